import CLinux
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a fresh thread whose effective capabilities lack the DAC overrides (as root,
/// so that permission checks apply as they would to a user); the thread ends with `body`.
public func runWithoutDACCapabilities(_ body: @escaping @Sendable () -> String?) -> String? {
    final class Box: @unchecked Sendable { var value: String? = "did not run" }
    let box = Box()
    guard
        let thread = WorkerThread.start({
            box.value = getuid() == 0 && cl_thread_drop_dac_caps() != 0 ? "capset failed" : body()
        })
    else { return "cannot start a thread" }
    thread.join()
    return box.value
}
