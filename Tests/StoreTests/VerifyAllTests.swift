import Foundation
import OCI
import Store
import UDockerSystem
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `verify --all` / `--repair` (issue 10; corpus case 34).
@Suite struct VerifyAllTests {
    let image = LocalImageName(name: "library/x", tag: "1")

    /// A repository with one v2 image (two blobs) and one container whose ROOT holds user data.
    func makeRepository(_ tmp: TemporaryDirectory) throws -> (LocalRepository, [Digest], String) {
        let (repo, blobs) = try LocalRepositoryTests().makeRepository(tmp, image: image)
        let id = "0123abcd-0000-0000-0000-000000000001"
        let dir = repo.containerDirectory(id)
        try FileInfo.makeDirectories("\(dir)/ROOT")
        try AtomicFile.write(#"{"config":{"Env":["A=1"]}}"#, to: "\(dir)/container.json")
        try AtomicFile.write("user data", to: "\(dir)/ROOT/data")
        return (repo, blobs, id)
    }

    @Test func aCleanRepositoryHasNoFindings() throws {
        let tmp = try TemporaryDirectory()
        let (repo, _, _) = try makeRepository(tmp)
        let r = try repo.verifyAll(repair: false)
        #expect(r.findings.isEmpty)
        #expect(r.blobsChecked == 2 && r.imagesChecked == 1 && r.containersChecked == 1)
    }

    @Test func corruptBlobIsReportedThenRemovedWithItsTag() throws {
        let tmp = try TemporaryDirectory()
        let (repo, blobs, _) = try makeRepository(tmp)
        let size = FileInfo.size("\(repo.layersDirectory)/\(blobs[0])")!
        // Same size, one byte different: only a re-hash finds it.
        try AtomicFile.write(Array("layer-bytez".utf8), to: "\(repo.layersDirectory)/\(blobs[0])")
        #expect(FileInfo.size("\(repo.layersDirectory)/\(blobs[0])") == size)
        let r = try repo.verifyAll(repair: false)
        #expect(r.findings.map(\.message).contains { $0.contains("blob \(blobs[0]) is corrupt") })
        #expect(r.findings.map(\.message).contains { $0.hasPrefix("image library/x:1:") && $0.contains("corrupt") })
        #expect(r.remaining == 2)
        #expect(FileInfo.exists("\(repo.layersDirectory)/\(blobs[0])"), "reporting alone removes nothing")
        let fixed = try repo.verifyAll(repair: true)
        #expect(fixed.remaining == 0 && fixed.findings.count == 2)
        #expect(!FileInfo.exists("\(repo.layersDirectory)/\(blobs[0])"))
        #expect(repo.listImages().isEmpty)
        // The config blob is now unreferenced but recent: kept (a pull may be about to tag it).
        #expect(try repo.verifyAll(repair: false).findings.isEmpty)
        #expect(try repo.verifyAll(repair: true, grace: 0).findings.map(\.message) == ["unreferenced blob: \(blobs[1])"])
    }

    @Test func protectedIncompleteImageIsReportedNotRemoved() throws {
        let tmp = try TemporaryDirectory()
        let (repo, blobs, _) = try makeRepository(tmp)
        try repo.setImageProtected(image, true)
        unlink("\(repo.layersDirectory)/\(blobs[0])")
        let r = try repo.verifyAll(repair: true)
        #expect(r.remaining == 1)
        #expect(r.findings.first?.message.contains("incomplete") == true)
        #expect(repo.imageExists(image))
    }

    @Test func aLinkOutOfTheRepositoryIsNotTrusted() throws {
        let tmp = try TemporaryDirectory()
        let (repo, blobs, _) = try makeRepository(tmp)
        let outside = tmp.sub("outside-blob")
        try AtomicFile.write(Array("layer-bytes".utf8), to: outside)
        let link = "\(repo.tagDirectory(image))/\(blobs[0])"
        unlink(link)
        symlink(outside, link)
        let r = try repo.verifyAll(repair: true)
        #expect(r.findings.contains { $0.message.contains("does not link to a file in the repository's layers") && $0.repaired })
        #expect(AtomicFile.readString(outside) == "layer-bytes", "the outside file is never touched")
    }

    @Test func containersAreReportedButTheirRootIsKept() throws {
        let tmp = try TemporaryDirectory()
        let (repo, _, id) = try makeRepository(tmp)
        let dir = repo.containerDirectory(id)
        try AtomicFile.write("garbage{", to: "\(dir)/container.json")
        try AtomicFile.write("X9", to: "\(dir)/execmode")
        try AtomicFile.write("../../etc", to: "\(dir)/lowers")
        let r = try repo.verifyAll(repair: true)
        let messages = r.findings.map(\.message)
        #expect(messages.contains { $0.contains("invalid container json metadata") && $0.contains("its ROOT is kept") })
        #expect(messages.contains { $0.contains("invalid overlay container metadata") })
        #expect(r.findings.contains { $0.message.contains("invalid execution mode 'X9'") && $0.repaired })
        #expect(r.remaining == 2)
        #expect(AtomicFile.readString("\(repo.containerRoot(id))/data") == "user data")
        #expect(!FileInfo.exists("\(dir)/execmode"))
    }

    @Test func leftoversAreReportedAndRepaired() throws {
        let tmp = try TemporaryDirectory()
        let (repo, _, id) = try makeRepository(tmp)
        try FileInfo.makeDirectories("\(repo.containersDirectory)/.creating-dead/ROOT")
        try FileInfo.makeDirectories("\(repo.layersDirectory)/.loading-dead")
        try AtomicFile.write("part", to: "\(repo.layersDirectory)/sha256:\(String(repeating: "a", count: 64)).partial")
        symlink(id + "-gone", "\(repo.containersDirectory)/oldname")
        let r = try repo.verifyAll(repair: false)
        #expect(r.findings.count == 4)
        #expect(r.findings.contains { $0.message.hasPrefix("partial download:") })
        #expect(r.findings.contains { $0.message == "dangling container name: oldname" })
        let fixed = try repo.verifyAll(repair: true)
        #expect(fixed.remaining == 0 && fixed.findings.count == 4)
        #expect(try repo.verifyAll(repair: false).findings.isEmpty)
        #expect(FileInfo.isDirectory(repo.containerRoot(id)))
    }
}
