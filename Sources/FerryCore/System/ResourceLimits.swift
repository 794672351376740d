import Glibc

/// The open-file limit decides ferry's connection capacity, so it is raised at start.
public enum ResourceLimits {
    /// Raises the soft RLIMIT_NOFILE to `wanted` (default: the hard limit) and returns the soft limit now in force.
    public static func raiseOpenFileLimit(to wanted: Int? = nil) -> (soft: Int, hard: Int) {
        var lim = rlimit()
        guard (try? syscall("getrlimit") { getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) }) != nil else { return (1024, 1024) }
        let hard = lim.rlim_max
        var target = hard
        if let w = wanted { target = min(hard, rlim_t(max(w, 0))) }
        if target > lim.rlim_cur || wanted != nil {
            var new = lim
            new.rlim_cur = target
            if (try? syscall("setrlimit") { setrlimit(Int32(RLIMIT_NOFILE.rawValue), &new) }) != nil { lim = new }
        }
        return (Int(clamping: lim.rlim_cur), Int(clamping: hard))
    }

    /// The soft open-file limit in force now: it may have been lowered (prlimit) since start.
    public static func currentOpenFileLimit() -> Int? {
        var lim = rlimit()
        guard (try? syscall("getrlimit") { getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) }) != nil else { return nil }
        return Int(clamping: lim.rlim_cur)
    }

    /// CPUs online, what nginx's `worker_processes auto` starts as many workers as.
    public static func onlineCPUs() -> Int {
        max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    /// Descriptors currently open in this process (from /proc/self/fd), for capacity checks and tests.
    public static func openDescriptorCount() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return -1 }
        defer { closedir(dir) }
        var n = 0
        while readdir(dir) != nil { n += 1 }
        return n - 3 // ".", ".." and the directory's own descriptor
    }
}
