import Foundation
import Testing
import Archive
import OCI
import UDockerSystem
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite struct TarWriterTests {
    func run(_ args: [String]) -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args[0])
        p.arguments = Array(args.dropFirst())
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try? p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    func makeTree(_ dir: String) throws {
        let fm = FileManager.default
        let long = String(repeating: "d", count: 120)
        let longer = String(repeating: "n", count: 150)
        try fm.createDirectory(atPath: "\(dir)/a/\(long)/\(longer)", withIntermediateDirectories: true)
        try "hello".write(toFile: "\(dir)/a/file", atomically: false, encoding: .utf8)
        try "deep".write(toFile: "\(dir)/a/\(long)/\(longer)/\(String(repeating: "f", count: 90))", atomically: false, encoding: .utf8)
        link("\(dir)/a/file", "\(dir)/a/hard")
        symlink("/etc/\(String(repeating: "t", count: 130))", "\(dir)/abs-link")
        symlink("a/file", "\(dir)/rel-link")
        mkdir("\(dir)/empty", 0o750)
        mkfifo("\(dir)/fifo", 0o600)
        chmod("\(dir)/a/file", 0o751)
    }

    @Test func treeRoundTripsThroughTheExtractorAndGNUTar() throws {
        let tmp = try TemporaryDirectory(prefix: "tarwriter")
        let src = tmp.sub("src"), dst = tmp.sub("dst"), tarPath = tmp.sub("out.tar")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dst, withIntermediateDirectories: true)
        try makeTree(src)
        let fd = open(tarPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let w = TarWriter(fileDescriptor: fd)
        try w.addTree(at: src)
        try w.finish()
        close(fd)
        // GNU tar reads it and sees the long names, the hard link and the symlinks.
        let (status, listing) = run(["/bin/tar", "-tvf", tarPath])
        #expect(status == 0, "\(listing)")
        #expect(listing.contains("./a/hard link to ./a/file"), "\(listing)")
        #expect(listing.contains(String(repeating: "f", count: 90)))
        #expect(listing.contains("-> /etc/\(String(repeating: "t", count: 130))"))
        #expect(listing.contains("0/0"), "owner must be 0/0: \(listing)")
        // Our extractor reproduces it.
        let x = try LayerExtractor(root: dst)
        let diffID = try x.extract(layerAt: tarPath)
        #expect(diffID == (try LayerInspector.inspect(path: tarPath).diffID))
        #expect((try? String(contentsOfFile: "\(dst)/a/hard", encoding: .utf8)) == "hello")
        var a = stat(), b = stat()
        stat("\(dst)/a/file", &a); stat("\(dst)/a/hard", &b)
        #expect(a.st_ino == b.st_ino, "hard link kept")
        #expect(a.st_mode & 0o777 == 0o751)
        #expect(FileInfo.readLink("\(dst)/rel-link") == "a/file")
        #expect(FileInfo.readLink("\(dst)/abs-link") == "/etc/\(String(repeating: "t", count: 130))")
        let deep =
            "\(dst)/a/\(String(repeating: "d", count: 120))/\(String(repeating: "n", count: 150))/\(String(repeating: "f", count: 90))"
        #expect((try? String(contentsOfFile: deep, encoding: .utf8)) == "deep")
    }

    @Test func decompressedFileMatchesTheDiffID() throws {
        let tmp = try TemporaryDirectory(prefix: "tarwriter")
        let src = tmp.sub("src")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try "x".write(toFile: "\(src)/x", atomically: false, encoding: .utf8)
        #expect(run(["/bin/tar", "-C", src, "-czf", tmp.sub("l.tgz"), "."]).0 == 0)
        let s = try LayerInspector.inspect(path: tmp.sub("l.tgz"))
        #expect(s.compression == .gzip)
        let fd = open(tmp.sub("outer.tar"), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let w = TarWriter(fileDescriptor: fd)
        let d = try w.addDecompressedFile(name: "l/layer.tar", sourcePath: tmp.sub("l.tgz"), size: s.uncompressedSize)
        try w.finish()
        close(fd)
        #expect(d == s.diffID)
        // Reading the outer archive back gives the same bytes.
        let rfd = open(tmp.sub("outer.tar"), O_RDONLY)
        defer { close(rfd) }
        let r = try ArchiveReader(fileDescriptor: rfd)
        let m = try #require(try r.next())
        #expect(m.name == "l/layer.tar" && m.kind == .file && m.size == s.uncompressedSize)
        var h = DigestHasher()
        try r.readData { h.update($0) }
        #expect(h.finalize() == s.diffID)
        #expect(try r.next() == nil)
    }

    @Test func memberNamesAreNormalisedAndTraversalRefused() {
        #expect(ArchiveReader.normalize(Array("./a//b/".utf8)) == "a/b")
        #expect(ArchiveReader.normalize(Array("./".utf8)) == "")
        #expect(ArchiveReader.normalize(Array("../x".utf8)) == nil)
        #expect(ArchiveReader.normalize(Array("a/../../x".utf8)) == nil)
        #expect(ArchiveReader.normalize(Array("/etc/passwd".utf8)) == nil)
        #expect(ArchiveReader.resolveLink(member: "a/layer.tar", target: "../b.tar") == "b.tar")
        #expect(ArchiveReader.resolveLink(member: "a/layer.tar", target: "../../x") == nil)
        #expect(ArchiveReader.resolveLink(member: "a/layer.tar", target: "/etc/passwd") == nil)
    }

    @Test func inspectorRefusesEscapingNamesOnlyWhenAsked() throws {
        let tmp = try TemporaryDirectory(prefix: "tarwriter")
        let fd = open(tmp.sub("evil.tar"), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let w = TarWriter(fileDescriptor: fd)
        try w.addFile(name: "../evil", bytes: Array("x".utf8))
        try w.finish()
        close(fd)
        #expect(throws: ArchiveError.self) { try LayerInspector.inspect(path: tmp.sub("evil.tar"), rejectEscapingNames: true) }
        #expect(try LayerInspector.inspect(path: tmp.sub("evil.tar")).entries == 1)
        // A truncated archive is an error.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: tmp.sub("evil.tar")))
        try bytes.prefix(700).write(to: URL(fileURLWithPath: tmp.sub("short.tar")))
        #expect(throws: ArchiveError.self) { try LayerInspector.inspect(path: tmp.sub("short.tar")) }
    }
}
