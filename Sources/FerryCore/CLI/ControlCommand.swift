import Glibc

/// `ferry ctl [-c FILE | -s SOCKET] [COMMAND...]` and `ferry ctl top`.
enum ControlCommand {
    static func run(_ args: [String]) -> Int32 {
        var socketPath: String? = nil
        var configPath = ConfigLoader.defaultPath
        var i = 0
        while i < args.count, args[i].hasPrefix("-") {
            guard i + 1 < args.count else { return fail("option \"\(args[i])\" requires a parameter") }
            switch args[i] {
            case "-s": socketPath = args[i + 1]
            case "-c": configPath = args[i + 1]
            default: return fail("invalid option: \"\(args[i])\"; usage: ferry ctl [-c FILE | -s SOCKET] [COMMAND...]")
            }
            i += 2
        }
        let words = Array(args[i...])
        if socketPath == nil {
            do {
                let config = try ConfigLoader.load(path: configPath).config
                guard let admin = config.adminSocket else {
                    return fail("no admin_socket in \(configPath); add \"admin_socket /run/ferry.sock;\" or give -s SOCKET")
                }
                socketPath = admin.path
            } catch {
                return fail("\(error); give the socket with -s SOCKET")
            }
        }
        let client = AdminClient(path: socketPath!)
        if words == ["top"] || words.first == "top" { return TopView.run(client: client, args: Array(words.dropFirst())) }
        if !words.isEmpty { return send(client, words.joined(separator: " ")) }
        // Interactive: one command per line from stdin; the status is that of the last one.
        let tty = isatty(0) == 1
        var status: Int32 = 0
        while true {
            if tty { FileHandleWriter.stdout.write("> ") }
            guard let line = readLine() else { break }
            if line.trimmingSpaces.isEmpty { continue }
            if line.trimmingSpaces == "quit" { break }
            status = send(client, line)
        }
        return status
    }

    static func send(_ client: AdminClient, _ command: String) -> Int32 {
        do {
            let (text, isError) = try client.send(command)
            (isError ? FileHandleWriter.stderr : FileHandleWriter.stdout).write(text)
            return isError ? 1 : 0
        } catch {
            // What did arrive is still shown, ahead of the reason it is incomplete.
            if case .truncated(_, let partial) = error { FileHandleWriter.stdout.write(partial.hasSuffix("\n") ? partial : partial + "\n") }
            return fail(error.description)
        }
    }

    static func fail(_ message: String) -> Int32 {
        FileHandleWriter.stderr.write("ferry ctl: \(message)\n")
        return 2
    }
}

extension String {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
