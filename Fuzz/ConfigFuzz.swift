// libFuzzer entry for the configuration front end, compiled together with
// the whole of FerryCore (see run.sh). The environment has no disk and no
// DNS, so the fuzzer explores the lexer, parser, include expansion and builder, not the host.
// Anything that loads must also survive the -T dump: it renders and loads to an equal Config.

private let sandbox = ConfigEnvironment(
    readFile: { path in
        switch path {
        case "self.conf": return .success(Array("include self.conf;".utf8))
        case "inc.conf": return .success(Array("upstream z { server 127.0.0.1:1; }".utf8))
        default: return .failure(.init("open() \"\(path)\" failed (2: No such file or directory)"))
        }
    },
    glob: { _ in ["inc.conf"] },
    canonicalPath: { $0 },
    resolveHost: { $0 == "localhost" ? [.ipv4("127.0.0.1")] : [] })

/// Blanks locations: the dump is a different file, the meaning must be the same.
private func meaning(_ config: Config) -> String {
    ConfigRenderer.render(config).split(separator: "\n").dropFirst().joined(separator: "\n")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func configFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let loaded = try ConfigLoader.load(bytes: bytes, file: "fuzz.conf", environment: sandbox)
        let dump = ConfigRenderer.render(loaded.config)
        guard let again = try? ConfigLoader.load(text: dump, file: "dump.conf", environment: sandbox) else {
            fatalError("the -T dump does not load:\n\(dump)")
        }
        precondition(meaning(again.config) == meaning(loaded.config), "the -T dump changes the configuration:\n\(dump)")
    } catch let error as ConfigError {
        precondition(!error.message.isEmpty)
    } catch {
        fatalError("not a ConfigError: \(error)")
    }
    return 0
}
