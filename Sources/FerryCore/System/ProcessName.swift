import Glibc

/// The kernel's name for a process (/proc/PID/comm: its executable's base name, at most 15
/// bytes), so `ferry -s` can tell a running ferry from whatever now has a stale pid file's number.
public enum ProcessName {
    /// nil when there is no such process (or /proc cannot say).
    public static func of(_ pid: Int32) -> String? { read("/proc/\(pid)/comm") }

    public static var own: String? { read("/proc/self/comm") }

    private static func read(_ path: String) -> String? {
        guard let fd = try? syscall("open", { open(path, O_RDONLY | O_CLOEXEC) }) else { return nil }
        defer { closeDescriptor(fd) }
        var buf = [UInt8](repeating: 0, count: 64)
        guard let n = buf.withUnsafeMutableBytes({ b in try? syscall("read") { Glibc.read(fd, b.baseAddress!, b.count) } }), n > 0 else { return nil }
        var name = buf[0..<n]
        if name.last == UInt8(ascii: "\n") { name = name.dropLast() }
        return String(decoding: name, as: UTF8.self)
    }
}
