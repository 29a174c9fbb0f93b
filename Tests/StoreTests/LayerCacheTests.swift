import Foundation
import OCI
import Store
import UDockerSystem
import TestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct LayerCacheTests {
    /// Two plain-tar layers: the second whites out /a and makes /e opaque.
    func makeImage(_ tmp: TemporaryDirectory, corruptDiffID: Bool = false) throws -> (LocalRepository, LocalImageName, [Digest]) {
        let repo = LocalRepository(topDirectory: tmp.sub("repo"))
        try repo.create()
        let files: [[(String, String)]] = [
            [("a", "a\n"), ("d/b", "b\n"), ("e/x", "x\n")],
            [(".wh.a", ""), ("e/.wh..wh..opq", ""), ("e/y", "y\n"), ("new", "n\n")],
        ]
        var layers: [Digest] = []
        for (i, layer) in files.enumerated() {
            let dir = tmp.sub("l\(i)")
            for (p, text) in layer {
                try FileInfo.makeDirectories((("\(dir)/\(p)") as NSString).deletingLastPathComponent)
                try AtomicFile.write(text, to: "\(dir)/\(p)")
            }
            let tarPath = tmp.sub("l\(i).tar")
            let tar = Process()
            tar.executableURL = URL(fileURLWithPath: "/bin/tar")
            tar.arguments = ["-cf", tarPath, "-C", dir, "."]
            try tar.run(); tar.waitUntilExit()
            let bytes = AtomicFile.read(tarPath)!
            let d = Digest.sha256(of: bytes)
            try AtomicFile.write(bytes, to: "\(repo.layersDirectory)/\(d)")
            layers.append(d)
        }
        var diffIDs = layers.map { "\"\($0)\"" }
        if corruptDiffID { diffIDs[1] = "\"\(Digest.sha256(of: Array("other".utf8)))\"" }
        let config = Array(
            #"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[\#(diffIDs.joined(separator: ","))]}}"#.utf8)
        let cd = Digest.sha256(of: config)
        try AtomicFile.write(config, to: "\(repo.layersDirectory)/\(cd)")
        let manifest = Manifest(
            config: Descriptor(mediaType: MediaType.ociConfig, digest: cd, size: Int64(config.count)),
            layers: layers.map { Descriptor(mediaType: MediaType.ociLayer, digest: $0, size: 1) })
        let image = LocalImageName(name: "library/ov", tag: "1")
        try repo.storeV2Image(image, manifest: Array(try JSONEncoder().encode(manifest)), blobs: layers + [cd])
        return (repo, image, layers)
    }

    func xattr(_ path: String, _ name: String) -> String? { LayerCache.xattr(path, name) }

    @Test func populatesOnceAndTheSecondCreateExtractsNothing() throws {
        let tmp = try TemporaryDirectory()
        let (repo, image, layers) = try makeImage(tmp)
        let before = LayerCache.extractions
        let a = try repo.createOverlayContainer(from: image)
        #expect(LayerCache.extractions - before == 2)
        var st1 = stat(); stat(repo.layerCache.path(layers[0]), &st1)
        let b = try repo.createOverlayContainer(from: image)
        #expect(LayerCache.extractions - before == 2)
        var st2 = stat(); stat(repo.layerCache.path(layers[0]), &st2)
        #expect(st1.st_ino == st2.st_ino && st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec)
        #expect(a != b && repo.isOverlayContainer(a) && repo.isOverlayContainer(b))
        #expect(try repo.overlayLowers(a) == layers.map { repo.layerCache.path($0) })
        #expect(FileInfo.isDirectory(repo.containerRoot(a)) && FileInfo.list(repo.containerRoot(a)).isEmpty)
        #expect(try repo.executionMode(a) == .N1)
        #expect(try repo.overlayLayout(a).options.hasPrefix("lowerdir=\(layers[1].hex):\(layers[0].hex),upperdir="))
        // Whiteouts in overlayfs xattr form.
        let top = repo.layerCache.path(layers[1])
        #expect(xattr("\(top)/a", "user.overlay.whiteout") == "y")
        #expect(xattr(top, "user.overlay.opaque") == "x")
        #expect(xattr("\(top)/e", "user.overlay.opaque") == "y")
        #expect(!FileInfo.exists("\(top)/.wh.a"))
        #expect(AtomicFile.readString("\(repo.layerCache.path(layers[0]))/d/b") == "b\n")
        // rm removes the container, the cache stays until pruned, and only unused entries go.
        try repo.removeContainer(a)
        #expect(!FileInfo.exists(repo.containerDirectory(a)))
        #expect(try repo.pruneLayerCache().isEmpty)
        try repo.removeContainer(b)
        let removed = try repo.pruneLayerCache().map { $0.split(separator: "/").last.map(String.init) ?? $0 }
        #expect(removed.filter { !$0.hasPrefix(".") }.count == 2, "\(removed)")
        #expect(removed.filter { $0.hasSuffix(".lock") }.count == 2, "the unused layers' lock files go too: \(removed)")
        #expect(FileInfo.list(repo.layerCache.directory).isEmpty)
        #expect(!repo.layerCache.contains(layers[0]))
    }

    @Test func aDiffIDMismatchRefusesTheCacheEntry() throws {
        let tmp = try TemporaryDirectory()
        let (repo, image, layers) = try makeImage(tmp, corruptDiffID: true)
        #expect(throws: (any Error).self) { try repo.createOverlayContainer(from: image) }
        #expect(repo.layerCache.contains(layers[0]))
        #expect(!repo.layerCache.contains(layers[1]))
        #expect(FileInfo.list(repo.layerCache.directory).allSatisfy { !$0.hasPrefix(".staging-") })
        #expect(repo.listContainers().isEmpty)
    }

    @Test func concurrentCreatesExtractEachLayerOnce() throws {
        let tmp = try TemporaryDirectory()
        let (repo, image, _) = try makeImage(tmp)
        let before = LayerCache.extractions
        let ids = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            if let id = try? repo.createOverlayContainer(from: image) { ids.withLock { $0.append(id) } }
        }
        #expect(ids.withLock { $0.count } == 4)
        #expect(LayerCache.extractions - before == 2)
    }

    @Test func storageSelection() throws {
        #expect(try ContainerStorage(validating: "") == .flat)
        #expect(try ContainerStorage(validating: " Overlay ") == .overlay)
        #expect(try ContainerStorage(validating: "flat") == .flat)
        #expect(throws: (any Error).self) { try ContainerStorage(validating: "zfs") }
    }
}
