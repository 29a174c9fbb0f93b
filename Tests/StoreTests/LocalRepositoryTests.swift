import Foundation
import OCI
import Store
import UDockerSystem
import TestSupport
import Testing

@Suite struct LocalRepositoryTests {
    /// A repository with one v2 image whose blobs are real files named by their digests.
    func makeRepository(
        _ tmp: TemporaryDirectory, image: LocalImageName = LocalImageName(name: "library/x", tag: "1")
    ) throws -> (LocalRepository, [Digest]) {
        let repo = LocalRepository(topDirectory: tmp.sub("repo"))
        try repo.create()
        let layer = Array("layer-bytes".utf8), config = Array(#"{"architecture":"amd64","os":"linux"}"#.utf8)
        let ld = Digest.sha256(of: layer), cd = Digest.sha256(of: config)
        try AtomicFile.write(layer, to: "\(repo.layersDirectory)/\(ld)")
        try AtomicFile.write(config, to: "\(repo.layersDirectory)/\(cd)")
        let manifest = Manifest(
            config: Descriptor(mediaType: MediaType.ociConfig, digest: cd, size: Int64(config.count)),
            layers: [Descriptor(mediaType: MediaType.ociLayerGzip, digest: ld, size: Int64(layer.count))])
        try repo.storeV2Image(image, manifest: Array(try JSONEncoder().encode(manifest)), blobs: [ld, cd])
        return (repo, [ld, cd])
    }

    @Test func createsTheFiveDirectoriesUdockerChecks() throws {
        let tmp = try TemporaryDirectory()
        let repo = LocalRepository(topDirectory: tmp.sub("r"))
        #expect(!repo.isRepository)
        try repo.create()
        #expect(repo.isRepository)
        for d in ["repos", "layers", "containers", "bin", "lib"] { #expect(FileInfo.isDirectory(tmp.sub("r/\(d)"))) }
    }

    @Test func storesAV2TagInUdockersLayout() throws {
        let tmp = try TemporaryDirectory()
        let (repo, blobs) = try makeRepository(tmp)
        let dir = tmp.sub("repo/repos/library/x/1")
        #expect(FileInfo.isRegularFile("\(dir)/TAG"))
        #expect(AtomicFile.readString("\(dir)/TAG") == "\(tmp.sub("repo/repos"))/library/x:1")
        #expect(FileInfo.isRegularFile("\(dir)/v2"))
        #expect(FileInfo.isRegularFile("\(dir)/manifest"))
        for d in blobs {
            #expect(FileInfo.readLink("\(dir)/\(d)") == "../../../../layers/\(d)")
            #expect(FileInfo.isRegularFile("\(dir)/\(d)"))
        }
        #expect(repo.listImages().map(\.image.description) == ["library/x:1"])
        let contents = try repo.imageContents(LocalImageName(name: "library/x", tag: "1"))
        #expect(contents.layerFiles == ["\(dir)/\(blobs[0])"])
        #expect(repo.verifyImage(LocalImageName(name: "library/x", tag: "1")).isEmpty)
    }

    @Test func verifyReportsACorruptLayer() throws {
        let tmp = try TemporaryDirectory()
        let (repo, blobs) = try makeRepository(tmp)
        try AtomicFile.write(Array("tampered".utf8), to: "\(repo.layersDirectory)/\(blobs[0])")
        let problems = repo.verifyImage(LocalImageName(name: "library/x", tag: "1"))
        #expect(problems.count == 1)
        #expect(problems.first?.contains("checksum mismatch") == true)
    }

    @Test func rmiKeepsLayersAnotherTagStillUses() throws {
        let tmp = try TemporaryDirectory()
        let (repo, blobs) = try makeRepository(tmp)
        let a = LocalImageName(name: "library/x", tag: "1"), b = LocalImageName(name: "other", tag: "2")
        try repo.tagImage(a, as: b)
        #expect(FileInfo.readLink("\(repo.tagDirectory(b))/\(blobs[0])") == "../../../layers/\(blobs[0])")
        try repo.removeImage(a)
        #expect(!repo.imageExists(a))
        #expect(FileInfo.isRegularFile("\(repo.layersDirectory)/\(blobs[0])"))
        #expect(!FileInfo.exists(tmp.sub("repo/repos/library")))  // empty parents removed
        try repo.removeImage(b)
        #expect(!FileInfo.exists("\(repo.layersDirectory)/\(blobs[0])"))
        #expect(!FileInfo.exists("\(repo.layersDirectory)/\(blobs[1])"))
    }

    @Test func protectedImageIsNotRemoved() throws {
        let tmp = try TemporaryDirectory()
        let (repo, _) = try makeRepository(tmp)
        let a = LocalImageName(name: "library/x", tag: "1")
        try repo.setImageProtected(a, true)
        #expect(throws: StoreError.self) { try repo.removeImage(a) }
        #expect(repo.imageExists(a))
    }

    @Test func containerNamesFollowUdockersRules() throws {
        let tmp = try TemporaryDirectory()
        let repo = LocalRepository(topDirectory: tmp.sub("repo"))
        try repo.create()
        let id = LocalRepository.newContainerID()
        try FileInfo.makeDirectories("\(repo.containerDirectory(id))/ROOT")
        #expect(id.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
        try repo.setContainerName(id, "web")
        #expect(FileInfo.readLink(tmp.sub("repo/containers/web")) == id)
        #expect(repo.containerID("web") == id)
        #expect(repo.containerID(id) == id)
        #expect(repo.containerNames(id) == ["web"])
        for bad in ["a/b", "a.b", "a b", "a[", "b]", ""] {
            #expect(throws: StoreError.self) { try repo.setContainerName(id, bad) }
        }
        #expect(throws: StoreError.self) { try repo.setContainerName(id, "web") }
        try repo.renameContainer("web", to: "www")
        #expect(repo.containerID("web") == nil)
        #expect(repo.containerID("www") == id)
        #expect(repo.listContainers().map(\.names) == [["www"]])
        try repo.removeContainer(id)
        #expect(repo.containerID("www") == nil)
        #expect(repo.listContainers().isEmpty)
    }

    @Test func aRunningContainerCannotBeRemoved() throws {
        let tmp = try TemporaryDirectory()
        let repo = LocalRepository(topDirectory: tmp.sub("repo"))
        try repo.create()
        let id = LocalRepository.newContainerID()
        try FileInfo.makeDirectories("\(repo.containerDirectory(id))/ROOT")
        let running = try repo.containerLock(id, .shared)
        #expect(throws: StoreError.self) { try repo.removeContainer(id) }
        #expect(FileInfo.isDirectory(repo.containerDirectory(id)))
        running?.unlock()
        try repo.removeContainer(id)
        #expect(!FileInfo.exists(repo.containerDirectory(id)))
    }
}
