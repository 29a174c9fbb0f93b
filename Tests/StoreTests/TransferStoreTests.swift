import Foundation
import OCI
import Store
import UDockerSystem
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct TransferStoreTests {
    /// A repository and a rootfs tarball made by GNU tar.
    func setup(_ tmp: TemporaryDirectory) throws -> (LocalRepository, String) {
        let repo = LocalRepository(topDirectory: tmp.sub("repo"))
        try repo.create()
        let rootfs = tmp.sub("rootfs")
        #expect(
            sh(
                "mkdir -p \(rootfs)/bin \(rootfs)/etc && echo hi > \(rootfs)/etc/hello && ln -s ../etc/hello \(rootfs)/bin/h && tar -C \(rootfs) -czf \(tmp.sub("rootfs.tgz")) ."
            ) == 0)
        return (repo, tmp.sub("rootfs.tgz"))
    }

    /// Every path below the repository with its type and size (the "did anything change" check).
    func listing(_ repo: LocalRepository) -> [String] {
        var out: [String] = []
        let e = FileManager.default.enumerator(atPath: repo.topDirectory)
        while let p = e?.nextObject() as? String {
            if p.hasSuffix(".udocker.lock") { continue }
            let full = "\(repo.topDirectory)/\(p)"
            out.append(
                "\(p) \(FileInfo.isSymlink(full) ? "l" : FileInfo.isDirectory(full) ? "d" : "f") \(FileInfo.isDirectory(full) ? 0 : FileInfo.size(full) ?? -1)"
            )
        }
        return out.sorted()
    }

    @Test func importWritesUdockersV1LayoutAndCreates() throws {
        let tmp = try TemporaryDirectory()
        let (repo, tgz) = try setup(tmp)
        let img = try LocalImageName(parsing: "imp/rootfs:1")
        let id = try repo.importImage(from: .file(tgz), as: img)
        let dir = repo.tagDirectory(img)
        #expect(FileInfo.isRegularFile("\(dir)/v1"))
        #expect(AtomicFile.readString("\(dir)/ancestry") == "[\"\(id)\"]")
        #expect(FileInfo.readLink("\(dir)/\(id).layer") == "../../../../layers/\(id).layer")
        #expect(FileInfo.isRegularFile("\(dir)/\(id).json"))
        #expect(FileInfo.isRegularFile(tgz), "without --mv the file stays")
        let c = try repo.createContainer(from: img)
        #expect(AtomicFile.readString("\(repo.containerRoot(c))/etc/hello") == "hi\n")
        // Same name again: refused, nothing changes.
        let before = listing(repo)
        #expect(throws: StoreError.self) { try repo.importImage(from: .file(tgz), as: img) }
        #expect(listing(repo) == before)
    }

    @Test func aTruncatedTarballChangesNothing() throws {
        let tmp = try TemporaryDirectory()
        let (repo, tgz) = try setup(tmp)
        let data = try Data(contentsOf: URL(fileURLWithPath: tgz))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: tmp.sub("cut.tgz")))
        let before = listing(repo)
        #expect(throws: StoreError.self) { try repo.importImage(from: .file(tmp.sub("cut.tgz")), as: LocalImageName(name: "x", tag: "1")) }
        #expect(throws: StoreError.self) { try repo.importContainer(from: .file(tmp.sub("cut.tgz"))) }
        #expect(throws: StoreError.self) { try repo.importClone(from: .file(tgz)) }  // no ROOT: not a clone archive
        #expect(listing(repo) == before)
    }

    @Test func saveThenLoadIntoAnotherRepository() throws {
        let tmp = try TemporaryDirectory()
        let (repo, tgz) = try setup(tmp)
        let img = LocalImageName(name: "imp/rootfs", tag: "1")
        try repo.importImage(from: .file(tgz), as: img)
        try repo.tagImage(img, as: LocalImageName(name: "imp/rootfs", tag: "2"))
        let fd = open(tmp.sub("save.tar"), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        try repo.saveImages([img, LocalImageName(name: "imp/rootfs", tag: "2")], to: fd)
        close(fd)
        #expect(sh("tar -tf \(tmp.sub("save.tar")) | grep -q manifest.json") == 0)
        let other = LocalRepository(topDirectory: tmp.sub("other"))
        try other.create()
        let rfd = open(tmp.sub("save.tar"), O_RDONLY)
        let loaded = try other.loadImages(from: rfd, sourceName: "save.tar")
        close(rfd)
        #expect(Set(loaded.map(\.description)) == ["imp/rootfs:1", "imp/rootfs:2"])
        #expect(other.verifyImage(img).isEmpty)
        let c = try other.createContainer(from: img)
        #expect(AtomicFile.readString("\(other.containerRoot(c))/etc/hello") == "hi\n")
    }

    @Test func loadRefusesAManifestNamingAMissingBlobAndTraversal() throws {
        let tmp = try TemporaryDirectory()
        let (repo, _) = try setup(tmp)
        let before = listing(repo)
        let d = tmp.sub("arch")
        #expect(
            sh(
                "mkdir -p \(d) && cd \(d) && echo '[{\"Config\":\"c.json\",\"RepoTags\":[\"a:b\"],\"Layers\":[\"x/layer.tar\"]}]' > manifest.json && echo '{}' > c.json && tar -cf \(tmp.sub("missing.tar")) manifest.json c.json"
            ) == 0)
        let fd = open(tmp.sub("missing.tar"), O_RDONLY)
        #expect(throws: StoreError.self) { try repo.loadImages(from: fd, sourceName: "missing.tar") }
        close(fd)
        #expect(
            sh(
                "cd \(d) && python3 -c \"import tarfile; t = tarfile.open('\(tmp.sub("evil.tar"))', 'w'); t.add('manifest.json'); t.add('c.json', arcname='../../evil'); t.close()\""
            ) == 0)
        let fd2 = open(tmp.sub("evil.tar"), O_RDONLY)
        #expect(throws: StoreError.self) { try repo.loadImages(from: fd2, sourceName: "evil.tar") }
        close(fd2)
        #expect(!FileInfo.exists(tmp.sub("evil")) && !FileInfo.exists("\(repo.topDirectory)/evil"))
        #expect(listing(repo) == before)
    }

    @Test func cloneAndExportCloneKeepEverything() throws {
        let tmp = try TemporaryDirectory()
        let (repo, tgz) = try setup(tmp)
        let c = try repo.importContainer(from: .file(tgz), name: "orig")
        try repo.setExecutionMode(c, .P1)
        let copy = try repo.cloneContainer(c, name: "copy")
        #expect(copy != c)
        #expect(repo.containerID("copy") == copy)
        #expect(try repo.executionMode(copy) == .P1)
        #expect(FileInfo.readLink("\(repo.containerRoot(copy))/bin/h") == "../etc/hello")
        #expect(AtomicFile.readString("\(repo.containerRoot(copy))/etc/hello") == "hi\n")
        #expect(AtomicFile.readString("\(repo.containerDirectory(copy))/imagerepo.name") == "IMPORTED:unknown")
        #expect(throws: StoreError.self) { try repo.cloneContainer(c, name: "copy") }
        let fd = open(tmp.sub("clone.tar"), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = try repo.exportContainer(c, to: fd, clone: true)
        close(fd)
        let back = try repo.importClone(from: .file(tmp.sub("clone.tar")))
        #expect(try repo.executionMode(back) == .P1)
        #expect(AtomicFile.readString("\(repo.containerRoot(back))/etc/hello") == "hi\n")
        #expect(repo.listContainers().count == 3)
    }

    @Test func pruneRemovesOrphansAndLeftoversOnly() throws {
        let tmp = try TemporaryDirectory()
        let (repo, tgz) = try setup(tmp)
        let img = LocalImageName(name: "keep", tag: "1")
        try repo.importImage(from: .file(tgz), as: img)
        try AtomicFile.write("junk", to: "\(repo.layersDirectory)/sha256:\(String(repeating: "0", count: 64))")
        try FileInfo.makeDirectories("\(repo.layersDirectory)/.loading-1-dead")
        try FileInfo.makeDirectories("\(repo.containersDirectory)/.creating-dead")
        symlink("no-such-container", "\(repo.containersDirectory)/dangling")
        let r = try repo.prune(grace: 0)
        #expect(r.removedLayers.count == 1)
        #expect(r.removedLeftovers.count == 3, "\(r.removedLeftovers)")
        #expect(repo.verifyImage(img).isEmpty)
        #expect(FileInfo.list(repo.layersDirectory).count == 2)
    }
}
