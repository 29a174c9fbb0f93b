import Store
import Testing

@Suite struct LocalImageNameTests {
    @Test(arguments: [
        ("busybox", "busybox", "latest"),
        ("debian:bookworm", "debian", "bookworm"),
        ("127.0.0.1:5000/library/debian:bookworm", "127.0.0.1:5000/library/debian", "bookworm"),
        ("127.0.0.1:5000/library/debian", "127.0.0.1:5000/library/debian", "latest"),
        ("quay.io/biocontainers/x:1.0--h1", "quay.io/biocontainers/x", "1.0--h1"),
    ])
    func parses(spec: String, name: String, tag: String) throws {
        let n = try LocalImageName(parsing: spec)
        #expect(n.name == name)
        #expect(n.tag == tag)
    }

    @Test func digestBecomesTheTagDirectory() throws {
        let hex = String(repeating: "a", count: 64)
        let n = try LocalImageName(parsing: "busybox@sha256:\(hex)")
        #expect(n.name == "busybox")
        #expect(n.tag == "sha256:\(hex)")
    }

    @Test(arguments: ["", "a/../b", "../x", "x:", ":tag", "a//b", "/abs", "a/.hidden", "bad name", "x:../../t", "x:.t"])
    func rejectsNamesThatCouldEscapeRepos(spec: String) {
        #expect(throws: StoreError.self) { try LocalImageName(parsing: spec) }
    }
}
