import Foundation
import Testing
@testable import Engines
#if canImport(Glibc)
import Glibc
#endif

/// The engines as an unprivileged user: when the tests run as root, `runsAsTester` re-executes
/// this test binary as `tester` with only the `inner…` tests enabled.
@Suite struct UnprivilegedTests {
    static let inner = ProcessInfo.processInfo.environment["UDOCKER_ENGINES_AS_TESTER"] == "1"
    static let testerExists = unprivilegedUser != nil

    @Test(.enabled(if: getuid() == 0 && testerExists && !inner && BusyboxContainer.busybox != nil))
    func runsAsTester() throws {
        let (status, output) = runAsUnprivileged(flag: "UDOCKER_ENGINES_AS_TESTER", filter: "UnprivilegedTests", path: "/usr/bin:/bin")
        #expect(status == 0, "\(output)")
        #expect(output.contains("innerNative() passed") || !userNamespacesWork, "\(output)")
        #expect(output.contains("innerPRoot() passed") || !prootAvailable, "\(output)")
    }

    @Test(.enabled(if: inner && userNamespacesWork))
    func innerNative() throws {
        #expect(getuid() != 0)
        let c = try BusyboxContainer()
        let r = try runEngine(
            .native, c,
            options(["sh", "-c", "id -u; stat -c %u /bin/busybox; touch /vol/by-root"]) {
                $0.volumes = [c.hostDir + ":/vol"]
            })
        #expect(r.output == "0\n0\n", "\(r.error)")
        var st = stat()
        #expect(stat(c.hostDir + "/by-root", &st) == 0 && st.st_uid == getuid())
        let u = try runEngine(
            .native, c,
            options(["sh", "-c", "id -u; id -g; stat -c %u /bin/busybox; touch /vol/by-user"]) {
                $0.user = "1000:1000"; $0.volumes = [c.hostDir + ":/vol"]
            })
        #expect(u.output == "1000\n1000\n1000\n", "\(u.error)")
        #expect(stat(c.hostDir + "/by-user", &st) == 0 && st.st_uid == getuid())
        // Files of other host users are not writable just because we are "root" inside.
        let w = try runEngine(
            .native, c,
            options(["sh", "-c", "echo x >> /etc/hostname-host 2>/dev/null && echo wrote || echo denied"]) {
                $0.volumes = ["/etc/hostname:/etc/hostname-host"]
            })
        #expect(w.output == "denied\n", "\(w.error)")
        #expect(try runEngine(.native, c, options(["sh", "-c", "exit 42"])).status == 42)
    }

    @Test(.enabled(if: inner && prootAvailable))
    func innerPRoot() throws {
        let c = try BusyboxContainer()
        let r = try runEngine(
            .proot, c,
            options(["sh", "-c", "id -u; touch /vol/by-proot; exit 42"]) {
                $0.volumes = [c.hostDir + ":/vol"]
            })
        #expect(r.status == 42)
        #expect(r.output == "0\n", "\(r.error)")
        var st = stat()
        #expect(stat(c.hostDir + "/by-proot", &st) == 0 && st.st_uid == getuid())
    }
}
