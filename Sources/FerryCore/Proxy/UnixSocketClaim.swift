import Glibc

/// Whether a Unix socket path may be bound by this ferry: free, held by a stale socket file
/// (removed here), or answered on by a live process.
///
/// bind() on a path that exists fails, so a socket file left by a killed ferry must go first;
/// but unlinking a file that a running process still listens on silently takes its clients
/// away, and that process removes "its" path when it exits, so neither keeps it. A second
/// ferry started by mistake must fail instead (nginx fails with EADDRINUSE on any existing
/// path). Shared by `listen unix:`, `metrics_listen unix:` and `admin_socket`.
enum UnixSocketClaim {
    enum Verdict: Equatable {
        /// Nothing there, or a stale socket that has just been removed.
        case free
        /// Something other than a socket: left alone; bind() will report it.
        case notASocket
        /// A process accepts connections on it.
        case inUse
    }

    static func claim(_ path: String) -> Verdict {
        var st = stat()
        guard lstat(path, &st) == 0 else { return .free }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else { return .notASocket }
        guard let address = SocketAddress(unixPath: path), let probe = try? Socket.stream(family: AF_UNIX) else { return .free }
        defer { probe.close() }
        // A Unix connect answers at once: refused means nobody owns the socket any more; accepted,
        // or EAGAIN (a full backlog), means a live process does.
        do {
            _ = try probe.connect(to: address)
        } catch let e where e == .connectionRefused {
            unlink(path)
            return .free
        } catch {}
        return .inUse
    }
}
