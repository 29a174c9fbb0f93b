import Testing
import UDockerSystem
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A resolver closes its descriptors once: an explicit `close()` followed by `deinit` closed the
/// root fd's number twice, and the second `close(2)` hit whatever the process had opened since.
@Suite struct RootResolverCloseTests {
    @Test("close() then deinit leaves a descriptor opened in between open")
    func closeIsOnce() throws {
        let tmp = try TemporaryDirectory(prefix: "resolver-close")
        let fs = try RootDirectory(path: tmp.path)
        var resolver: RootResolver? = try fs.makeResolver()
        let rootNumber = try #require(resolver?.rootFD)
        resolver?.close()
        // The lowest free number is the one just closed: the next open takes it.
        let other = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { if other >= 0 { close(other) } }
        #expect(other == rootNumber, "the test needs the freed number to be reused")
        resolver = nil  // deinit
        #expect(fcntl(other, F_GETFD) >= 0, "deinit closed fd \(other), which the resolver no longer owned")
        _ = resolver
    }
}
