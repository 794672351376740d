/// Splits one admin line into commands and words the way HAProxy's CLI does: commands are
/// separated by `;`, words by spaces or tabs, and a backslash makes the next character
/// literal (`\;` is a semicolon inside a word). The line is read scalar by scalar, as HAProxy
/// reads bytes: read by Character, a `;` followed by a combining mark would be one grapheme
/// that is not `;`, and two commands would run as one.
public struct AdminCommandLine: Equatable, Sendable {
    public var words: [String]

    public init(_ words: [String]) { self.words = words }

    /// The commands in order, one per `;`-separated part. A part with no words (a blank line,
    /// `;;`, a trailing `;`) is an empty command: HAProxy answers each with its unknown-command
    /// help, so a client counting answers sees one per part, and so does ferry.
    public static func split(_ line: String) -> [AdminCommandLine] {
        var commands: [AdminCommandLine] = []
        var words: [String] = []
        var word = String.UnicodeScalarView()
        var inWord = false
        var escaped = false
        func endWord() {
            if inWord { words.append(String(word)) }
            word = String.UnicodeScalarView()
            inWord = false
        }
        func endCommand() {
            endWord()
            commands.append(AdminCommandLine(words))
            words = []
        }
        for c in line.unicodeScalars {
            if escaped {
                word.append(c); inWord = true; escaped = false
                continue
            }
            switch c {
            case "\\": escaped = true
            case ";": endCommand()
            case " ", "\t": endWord()
            default: word.append(c); inWord = true
            }
        }
        endCommand()
        return commands
    }
}
