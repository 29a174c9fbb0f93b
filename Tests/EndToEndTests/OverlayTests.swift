import Foundation
import Testing
import TestSupport

/// Overlay containers (`create --storage=overlay`): layers extracted once into the shared cache,
/// whiteouts in overlayfs xattr form, every write in the container's `upper/`.
@Suite("E2E overlay storage", e2eEnabled)
struct OverlayTests {
    @Test("overlay containers share the cached layers, apply whiteouts, keep writes private, and convert to flat")
    func overlayLifecycle() async throws {
        let box = try sandbox()
        try await box.pull(box.env.whiteout)
        let first = try await box.udocker(["create", "--storage=overlay", "--name=o1", box.env.whiteout])
        try requireSuccess(first)
        let id1 = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(isContainerID(id1), "\(first)")
        #expect(box.listDirectory(box.containerRoot(id1)).isEmpty, "an overlay container's ROOT is only a mountpoint")
        #expect(box.exists("\(box.containerDirectory(id1))/upper"))
        let cache = "\(box.layersDirectory)/cache"
        let cached = box.listDirectory(cache).filter { !$0.hasPrefix(".") }.sorted()
        #expect(cached.count == 3, "one cache entry per layer of the whiteout image: \(cached)")

        // The merged view applies the image's file, directory, nested and opaque whiteouts.
        let view = try await box.run([
            "o1", "sh", "-c", "ls -a /opq; test -e /gone && echo BAD; test -e /gonedir && echo BAD; cat /keep /dir/sub/stay",
        ])
        expectSuccess(view)
        #expect(view.stdoutLines.filter { $0 != "." && $0 != ".." } == ["c", "keep", "stay"], "\(view)")

        // Writes and deletions land in upper/, not in the shared cache.
        expectSuccess(try await box.run(["o1", "sh", "-c", "echo mine > /new; rm /keep"]))
        #expect(box.readFile("\(box.containerDirectory(id1))/upper/new") == "mine\n")
        let second = try await box.udocker(["create", "--storage=overlay", "--name=o2", box.env.whiteout])
        try requireSuccess(second)
        #expect(box.listDirectory(cache).filter { !$0.hasPrefix(".") }.sorted() == cached, "the second create extracts nothing new")
        let other = try await box.run(["o2", "sh", "-c", "cat /keep; test -e /new && echo LEAK; true"])
        expectSuccess(other)
        #expect(other.stdout == "keep\n", "containers of one image are independent:\n\(other)")

        // Converting to a mode that needs a plain directory materialises the merged tree.
        expectSuccess(try await box.udocker(["setup", "--execmode=P1", "o1"]))
        #expect(box.readFile("\(box.containerRoot(id1))/new") == "mine\n")
        #expect(!box.exists("\(box.containerRoot(id1))/keep"))
        #expect(!box.exists("\(box.containerDirectory(id1))/upper"))
        let p1 = try await box.run(["o1", "sh", "-c", "cat /new; ls /opq"])
        expectSuccess(p1)
        #expect(p1.stdout == "mine\nc\n", "\(p1)")

        expectSuccess(try await box.udocker(["rm", "o1", "o2"]))
        #expect(try await box.psLines().isEmpty)
        #expect(box.listDirectory(cache).filter { !$0.hasPrefix(".") }.sorted() == cached, "rm leaves the shared cache alone")

        // rmi --prune removes the extracted layers no overlay container uses, and only those.
        try requireSuccess(try await box.udocker(["create", "--storage=overlay", "--name=o3", box.env.whiteout]))
        let kept = try await box.udocker(["rmi", "--prune"])
        try requireSuccess(kept)
        #expect(box.listDirectory(cache).filter { !$0.hasPrefix(".") }.sorted() == cached, "o3 still uses every layer: \(kept)")
        expectSuccess(try await box.udocker(["rm", "o3"]))
        let pruned = try await box.udocker(["rmi", "--prune"])
        try requireSuccess(pruned)
        #expect(box.listDirectory(cache).isEmpty, "\(pruned)")
        #expect(pruned.stderr.contains("removed unused extracted layer"), "\(pruned)")
        #expect(try await box.imageLines().count == 1, "the image itself stays")
    }

    @Test("export, export --clone and clone of an overlay container carry its merged files; the clone is flat")
    func overlayTransfer() async throws {
        let box = try sandbox()
        try await box.pull(box.env.whiteout)
        try requireSuccess(try await box.udocker(["create", "--storage=overlay", "--name=o1", box.env.whiteout]))
        expectSuccess(try await box.run(["o1", "sh", "-c", "echo mine > /new; rm /keep"]))

        // export: the merged tree, whiteouts applied, the container's own changes included.
        try requireSuccess(try await box.udocker(["export", "-o", "\(box.tmp)/o1.tar", "o1"]))
        let listed = try await box.shell("tar -tf \(box.tmp)/o1.tar")
        expectSuccess(listed)
        let names = Set(listed.stdoutLines)
        #expect(names.isSuperset(of: ["./new", "./dir/sub/stay", "./opq/c"]), "\(listed)")
        #expect(names.isDisjoint(with: ["./keep", "./gone", "./gonedir/", "./opq/a"]), "\(listed)")

        // export --clone: a flat container (ROOT holds the files; no overlay bookkeeping).
        try requireSuccess(try await box.udocker(["export", "--clone", "-o", "\(box.tmp)/o1-clone.tar", "o1"]))
        let cloneListed = try await box.shell("tar -tf \(box.tmp)/o1-clone.tar")
        let cloneNames = Set(cloneListed.stdoutLines)
        #expect(cloneNames.isSuperset(of: ["./ROOT/new", "./ROOT/dir/sub/stay", "./container.json", "./imagerepo.name"]), "\(cloneListed)")
        #expect(cloneNames.isDisjoint(with: ["./lowers", "./upper/", "./work/", "./ROOT/keep"]), "\(cloneListed)")
        let imported = try await box.udocker(["import", "--clone", "\(box.tmp)/o1-clone.tar"])
        try requireSuccess(imported)
        let importedID = imported.stdoutLines.last ?? ""
        #expect(box.readFile("\(box.containerRoot(importedID))/new") == "mine\n", "\(imported)")

        // clone: a flat copy that runs in a mode needing a plain directory; the original is unchanged.
        let cloned = try await box.udocker(["clone", "--name=c1", "o1"])
        try requireSuccess(cloned)
        let cloneID = cloned.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!box.exists("\(box.containerDirectory(cloneID))/lowers"))
        #expect(box.readFile("\(box.containerRoot(cloneID))/new") == "mine\n")
        try await box.use(.p1, for: "c1")
        let p1 = try await box.run(["c1", "sh", "-c", "cat /new /dir/sub/stay; test -e /keep && echo BAD; true"])
        expectSuccess(p1)
        #expect(p1.stdout == "mine\nstay\n", "\(p1)")
        let again = try await box.run(["o1", "cat", "/new"])
        expectSuccess(again)
        #expect(again.stdout == "mine\n", "the overlay container is still an overlay container: \(again)")
    }
}
