import Testing
@testable import OCI

private let hex64 = String(repeating: "ab", count: 32)

@Suite struct ImageReferenceTests {
    struct Valid: Sendable, CustomStringConvertible {
        var input: String
        var registry: String?
        var repository: String
        var tag: String
        var digest: String?
        var localName: String
        var localTag: String
        var description: String { input }
    }

    static let valid: [Valid] = [
        .init(input: "debian", registry: nil, repository: "debian", tag: "latest", localName: "debian", localTag: "latest"),
        .init(input: "debian:12", registry: nil, repository: "debian", tag: "12", localName: "debian", localTag: "12"),
        .init(
            input: "library/debian:bookworm-slim", registry: nil, repository: "library/debian", tag: "bookworm-slim",
            localName: "library/debian", localTag: "bookworm-slim"),
        .init(
            input: "biocontainers/samtools:v1.9-4-deb_cv1", registry: nil, repository: "biocontainers/samtools",
            tag: "v1.9-4-deb_cv1", localName: "biocontainers/samtools", localTag: "v1.9-4-deb_cv1"),
        .init(
            input: "quay.io/biocontainers/x:1.0", registry: "quay.io", repository: "biocontainers/x", tag: "1.0",
            localName: "quay.io/biocontainers/x", localTag: "1.0"),
        .init(
            input: "127.0.0.1:5000/library/x:tag", registry: "127.0.0.1:5000", repository: "library/x", tag: "tag",
            localName: "127.0.0.1:5000/library/x", localTag: "tag"),
        .init(input: "localhost/x", registry: "localhost", repository: "x", tag: "latest", localName: "localhost/x", localTag: "latest"),
        .init(
            input: "localhost:5000/a/b/c", registry: "localhost:5000", repository: "a/b/c", tag: "latest",
            localName: "localhost:5000/a/b/c", localTag: "latest"),
        .init(
            input: "debian@sha256:\(hex64)", registry: nil, repository: "debian", tag: "latest", digest: "sha256:\(hex64)",
            localName: "debian", localTag: "sha256:\(hex64)"),
        .init(
            input: "ghcr.io/o/r:v1@sha256:\(hex64)", registry: "ghcr.io", repository: "o/r", tag: "v1", digest: "sha256:\(hex64)",
            localName: "ghcr.io/o/r", localTag: "sha256:\(hex64)"),
        .init(
            input: "docker.io/library/centos:7", registry: "docker.io", repository: "library/centos", tag: "7",
            localName: "docker.io/library/centos", localTag: "7"),
        .init(
            input: "a__b-c---e/f_g.h", registry: nil, repository: "a__b-c---e/f_g.h", tag: "latest",
            localName: "a__b-c---e/f_g.h", localTag: "latest"),
        .init(
            input: "[::1]:5000/x:_T.1", registry: "[::1]:5000", repository: "x", tag: "_T.1", localName: "[::1]:5000/x", localTag: "_T.1"),
        .init(
            input: "My-Registry.example.com/x", registry: "My-Registry.example.com", repository: "x", tag: "latest",
            localName: "My-Registry.example.com/x", localTag: "latest"),
        .init(
            input: "x:" + String(repeating: "t", count: 128), registry: nil, repository: "x", tag: String(repeating: "t", count: 128),
            localName: "x", localTag: String(repeating: "t", count: 128)),
    ]

    @Test(arguments: valid)
    func parsesValid(_ v: Valid) throws {
        let r = try ImageReference(parsing: v.input)
        #expect(r.registry == v.registry)
        #expect(r.repository == v.repository)
        #expect(r.tag == v.tag)
        #expect(r.digest?.description == v.digest)
        #expect(r.localName == v.localName)
        #expect(r.localTag == v.localTag)
    }

    @Test func descriptionRoundTrips() throws {
        #expect(try ImageReference(parsing: "debian").description == "debian:latest")
        #expect(try ImageReference(parsing: "127.0.0.1:5000/library/x:1").description == "127.0.0.1:5000/library/x:1")
        #expect(try ImageReference(parsing: "debian@sha256:\(hex64)").description == "debian@sha256:\(hex64)")
    }

    static let invalid: [(String, String)] = [
        ("", "empty name"),
        ("UPPER/x", "lowercase"),
        ("Debian", "lowercase"),
        ("a/../b", "bad path component '..'"),
        ("../x", "bad registry host"),
        ("./x", "bad registry host"),
        ("name:", "empty tag"),
        ("x:" + String(repeating: "t", count: 129), "tag longer than 128"),
        (String(repeating: "a", count: 256), "name longer than 255"),
        ("quay.io/" + String(repeating: "a/", count: 124) + "abc", "name longer than 255"),
        ("@sha256:abc", "bad digest"),
        ("debian@sha256:abc", "bad digest"),
        ("debian@sha256:" + hex64.uppercased(), "bad digest"),
        ("debian@md5:d41d8cd98f00b204e9800998ecf8427e", "bad digest"),
        ("debian@sha256:../../\(hex64)", "bad digest"),
        ("debian@", "bad digest"),
        ("a//b", "empty path component"),
        ("/debian", "empty path component"),
        ("debian/", "empty path component"),
        ("-debian", "bad path component"),
        ("debian-", "bad path component"),
        ("a..b", "bad path component"),
        ("a___b", "bad path component"),
        ("a__b.c/x", "bad registry host"),  // a first component with '.' is a host, as in Docker
        ("deb ian", "printable ASCII"),
        ("debian:-tag", "bad tag"),
        ("debian:.tag", "bad tag"),
        ("debian:t@g", "bad digest"),
        ("host:99999/x", "bad registry host"),
        ("-bad.host/x", "bad registry host"),
        ("debian:a/b", "bad registry host"),
        ("déb", "printable ASCII"),
    ]

    @Test(arguments: invalid)
    func rejectsInvalid(_ input: String, _ reasonPart: String) {
        do {
            let r = try ImageReference(parsing: input)
            Issue.record("accepted '\(input)' as \(r)")
        } catch let e as ReferenceError {
            #expect(e.description.contains(reasonPart), "'\(e.description)' lacks '\(reasonPart)'")
            #expect(!e.description.contains("\n"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}
