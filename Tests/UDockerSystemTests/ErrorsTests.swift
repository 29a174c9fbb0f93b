import Testing
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ErrorTests {
    @Test func aWrappedSystemErrorKeepsItsMessageAndCause() {
        let sys = SystemError("open", path: "/x", errno: ENOENT)
        let e = UDockerError(wrapping: sys, context: "layer sha256:ab")
        #expect(e.kind == .io)
        #expect(e.description == "layer sha256:ab: open /x: \(String(cString: strerror(ENOENT)))")
        #expect((e.rootCause as? SystemError)?.errno == ENOENT)
        let outer = UDockerError(.invalidInput, "cannot copy container c1", cause: e)
        #expect((outer.rootCause as? SystemError) == sys)
        #expect(outer.description == "cannot copy container c1")
    }

    @Test func wrappingKeepsAnExistingContext() {
        let e = UDockerError(.truncated, "truncated tar archive", context: "layer a")
        #expect(UDockerError(wrapping: e, context: "layer b").description == "layer a: truncated tar archive")
        #expect(UDockerError(wrapping: UDockerError(.truncated, "t"), context: "layer b").description == "layer b: t")
    }
}
