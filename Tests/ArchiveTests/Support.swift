import Foundation
import Testing
import Archive
import OCI
import UDockerSystem
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A container root next to an "outside" sentinel directory (moby's testBreakout idea): after
/// every hostile extraction, `outside` must hold exactly `hello` with its original content.
final class Fixture {
    let tmp: TemporaryDirectory
    let root: String
    let outside: String
    private var layerCount = 0

    init() throws {
        tmp = try TemporaryDirectory(prefix: "archive-test")
        root = tmp.sub("root")
        outside = tmp.sub("outside")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try "secret".write(toFile: outside + "/hello", atomically: false, encoding: .utf8)
        chmod(outside + "/hello", 0o400)
    }

    /// Writes a layer file and returns its path.
    func layer(_ bytes: [UInt8], name: String? = nil) throws -> String {
        layerCount += 1
        let p = tmp.sub(name ?? "layer\(layerCount).tar")
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    /// Extracts the layers in order with one extractor.
    @discardableResult
    func extract(_ layers: [UInt8]..., options: ExtractOptions = .init()) throws -> (LayerExtractor, [Digest]) {
        let x = try LayerExtractor(root: root, options: options)
        var digests: [Digest] = []
        for l in layers { digests.append(try x.extract(layerAt: try layer(l))) }
        return (x, digests)
    }

    /// The sentinel is intact: only `hello`, same content, mode 0400, one link.
    func outsideIntact() -> Bool {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: outside), names == ["hello"] else { return false }
        guard let s = try? String(contentsOfFile: outside + "/hello", encoding: .utf8), s == "secret" else { return false }
        guard let st = lstatOf(outside + "/hello") else { return false }
        return st.st_mode & 0o7777 == 0o400 && st.st_nlink == 1
    }

    /// Nothing new appeared next to the root.
    func siblingsUnchanged(_ expected: Set<String>) -> Bool {
        (try? Set(FileManager.default.contentsOfDirectory(atPath: tmp.path)).filter { !$0.hasPrefix("layer") }) == expected
    }

    func r(_ p: String) -> String { root + "/" + p }
}

func lstatOf(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}

func lstatBytes(_ path: [UInt8]) -> stat? {
    var st = stat()
    return withCName(path) { lstat($0, &st) } == 0 ? st : nil
}

func exists(_ path: String) -> Bool { lstatOf(path) != nil }
func isSymlink(_ path: String) -> Bool { lstatOf(path).map { $0.st_mode & 0o170000 == 0o120000 } ?? false }
func isDir(_ path: String) -> Bool { lstatOf(path).map { $0.st_mode & 0o170000 == 0o040000 } ?? false }
func isRegular(_ path: String) -> Bool { lstatOf(path).map { $0.st_mode & 0o170000 == 0o100000 } ?? false }
func mode(_ path: String) -> UInt32? { lstatOf(path).map { UInt32($0.st_mode & 0o7777) } }
func text(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }
func linkTarget(_ path: String) -> String? { try? FileManager.default.destinationOfSymbolicLink(atPath: path) }

/// Runs a shell command; returns (status, stdout).
@discardableResult
func sh(_ command: String) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", command]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// sha256 of bytes via the system `sha256sum` (an independent implementation).
func sha256sum(file: String) throws -> String {
    let (st, out) = try sh("sha256sum '\(file)'")
    #expect(st == 0)
    return String(out.prefix(64))
}

/// Runs `body` expecting an ArchiveError; returns it.
func expectArchiveError(_ body: () throws -> Void) -> ArchiveError? {
    do {
        try body()
        Issue.record("expected an ArchiveError")
        return nil
    } catch let e as ArchiveError {
        return e
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}
