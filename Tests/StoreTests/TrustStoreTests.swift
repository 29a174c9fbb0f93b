import Foundation
import OCI
import Store
import UDockerSystem
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Container metadata from someone else (clone archives, containers in a shared repository),
/// stale staging, tarball handling and repository modes (issue 10, defects 1, 2, 4 and 6).
@Suite struct TrustStoreTests {
    /// A file outside every repository: content, size and mtime must never change.
    struct Sentinel {
        let path: String
        let stamp: String
        init(_ dir: String) throws {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            path = dir + "/file"
            try "precious\n".write(toFile: path, atomically: false, encoding: .utf8)
            var ts = [timespec(tv_sec: 1_500_000_000, tv_nsec: 0), timespec(tv_sec: 1_500_000_000, tv_nsec: 0)]
            utimensat(AT_FDCWD, path, &ts, 0)
            stamp = Self.describe(path)
        }
        static func describe(_ p: String) -> String {
            var st = stat()
            guard lstat(p, &st) == 0 else { return "missing" }
            return "\(st.st_size) \(st.st_mtim.tv_sec) \(st.st_mode) \(AtomicFile.readString(p) ?? "")"
        }
        var intact: Bool { Self.describe(path) == stamp && FileInfo.list((path as NSString).deletingLastPathComponent) == ["file"] }
    }

    /// A clone archive (as `export --clone` lays it out) whose metadata attacks `outside`.
    func hostileCloneArchive(_ tmp: TemporaryDirectory, outside: Sentinel, execmode: String = "F1") -> String {
        let c = tmp.sub("hostile")
        let outDir = (outside.path as NSString).deletingLastPathComponent
        let record =
            #"{"path":"/../../../../../../../../\#(outside.path)","originalSize":0,"patchedSize":99999999999,"regions":[],"appendOffset":0,"appended":"","mtimeSeconds":0,"mtimeNanoseconds":0}"#
        let script = """
            set -e; mkdir -p \(c)/ROOT/etc \(c)/upper \(c)/work
            echo hi > \(c)/ROOT/etc/hello
            echo '{"config":{"Env":["A=1"]}}' > \(c)/container.json
            echo 'evil/image:1' > \(c)/imagerepo.name
            echo '\(execmode)' > \(c)/execmode
            echo F1 > \(c)/.conversion
            echo F1 > \(c)/fakechroot.mode
            echo '\(record)' > \(c)/elf.patch.log
            printf '../../../../%s\\n' x > \(c)/lowers
            ln -s \(outDir) \(c)/.bind_orig_files
            ln -s \(outDir) \(c)/.mountpoints
            ln -s \(outside.path) \(c)/.lock
            ln -s \(outside.path) \(c)/libfakechroot.so
            ln -s \(outside.path) \(c)/ld.so.orig
            echo '/old/place/containers/x/ROOT' > \(c)/root.path
            echo 'not a path' > \(c)/patch.path
            tar -C \(c) -cf \(tmp.sub("hostile.tar")) .
            """
        #expect(sh(script) == 0)
        return tmp.sub("hostile.tar")
    }

    func repository(_ tmp: TemporaryDirectory) throws -> LocalRepository {
        let repo = LocalRepository(topDirectory: tmp.sub("repo"))
        try repo.create()
        return repo
    }

    // Defect 1: import --clone keeps ROOT, container.json, imagerepo.name, a valid execmode and
    // (F modes) the validated record of the old conversion; everything else is dropped.
    @Test func importCloneKeepsOnlyWhatACloneNeeds() throws {
        let tmp = try TemporaryDirectory()
        let outside = try Sentinel(tmp.sub("outside"))
        let repo = try repository(tmp)
        let tar = hostileCloneArchive(tmp, outside: outside)
        let id = try repo.importClone(from: .file(tar))
        let dir = repo.containerDirectory(id)
        #expect(
            FileInfo.list(dir).sorted() == [
                ".lock", "ROOT", "container.json", "elf.patch.log", "execmode", "fakechroot.mode", "imagerepo.name", "root.path",
            ])
        #expect(!FileInfo.isSymlink("\(dir)/.lock"))
        #expect(AtomicFile.readString("\(dir)/imagerepo.name") == "evil/image:1")
        #expect(try repo.executionMode(id) == .F1)
        #expect(AtomicFile.readString("\(dir)/root.path") == "/old/place/containers/x/ROOT")
        #expect(AtomicFile.readString("\(repo.containerRoot(id))/etc/hello") == "hi\n")
        #expect(!repo.isOverlayContainer(id))
        _ = try repo.purgeContainer(id)
        #expect(outside.intact)
    }

    @Test func importCloneDropsAnInvalidExecmodeAndFStateOfOtherModes() throws {
        let tmp = try TemporaryDirectory()
        let outside = try Sentinel(tmp.sub("outside"))
        let repo = try repository(tmp)
        var warnings: [String] = []
        let bad = try repo.importClone(
            from: .file(hostileCloneArchive(tmp, outside: outside, execmode: "../../x")), warn: { warnings.append("\($0)") })
        #expect(FileInfo.list(repo.containerDirectory(bad)).sorted() == [".lock", "ROOT", "container.json", "imagerepo.name"])
        #expect(warnings.contains { $0.contains("invalid execution mode") })
        try FileTree.remove(tmp.sub("hostile")); unlink(tmp.sub("hostile.tar"))
        let p1 = try repo.importClone(from: .file(hostileCloneArchive(tmp, outside: outside, execmode: "P1")))
        #expect(FileInfo.list(repo.containerDirectory(p1)).sorted() == [".lock", "ROOT", "container.json", "execmode", "imagerepo.name"])
        #expect(outside.intact)
    }

    @Test func importCloneRefusesASymlinkedRoot() throws {
        let tmp = try TemporaryDirectory()
        let outside = try Sentinel(tmp.sub("outside"))
        let repo = try repository(tmp)
        let c = tmp.sub("c")
        #expect(
            sh(
                "mkdir -p \(c) && ln -s \((outside.path as NSString).deletingLastPathComponent) \(c)/ROOT && echo N1 > \(c)/execmode && tar -C \(c) -cf \(tmp.sub("c.tar")) ."
            ) == 0)
        #expect(throws: StoreError.self) { try repo.importClone(from: .file(tmp.sub("c.tar"))) }
        #expect(repo.listContainers().isEmpty)
        #expect(FileInfo.list(repo.containersDirectory).isEmpty)
        #expect(outside.intact)
    }

    // Defect 1, `clone` of a container in a (shared) repository: the same filter.
    @Test func cloneOfAHostileContainerKeepsOnlyWhatACloneNeeds() throws {
        let tmp = try TemporaryDirectory()
        let outside = try Sentinel(tmp.sub("outside"))
        let repo = try repository(tmp)
        let src = "0badc0de-1111-3222-8333-444455556666"
        _ = hostileCloneArchive(tmp, outside: outside)
        #expect(sh("cp -a \(tmp.sub("hostile")) \(repo.containerDirectory(src))") == 0)
        let id = try repo.cloneContainer(src)
        #expect(
            FileInfo.list(repo.containerDirectory(id)).sorted() == [
                ".lock", "ROOT", "container.json", "elf.patch.log", "execmode", "fakechroot.mode", "imagerepo.name", "root.path",
            ])
        #expect(outside.intact)
    }

    // Defect 1, consumers: overlay metadata is validated before it becomes mount options.
    @Test func overlayMetadataIsValidated() throws {
        let tmp = try TemporaryDirectory()
        let repo = try repository(tmp)
        let id = "0badc0de-1111-3222-8333-444455556666"
        let dir = repo.containerDirectory(id)
        let layer = String(repeating: "ab", count: 32)
        #expect(sh("mkdir -p \(dir)/ROOT \(dir)/upper \(dir)/work \(repo.layerCache.directory)/\(layer)") == 0)
        try AtomicFile.write("\(layer)\n", to: "\(dir)/lowers")
        #expect(try repo.overlayLayout(id).options == "lowerdir=\(layer),upperdir=\(dir)/upper,workdir=\(dir)/work,userxattr")
        for bad in ["../../../../etc\n", "\(layer),upperdir=/tmp\n", String(repeating: "cd", count: 32) + "\n"] {
            try AtomicFile.write(bad, to: "\(dir)/lowers")
            #expect(throws: StoreError.self) { try repo.overlayLayout(id).options }
        }
        try AtomicFile.write("\(layer)\n", to: "\(dir)/lowers")
        #expect(sh("rmdir \(dir)/upper && ln -s /tmp \(dir)/upper") == 0)
        #expect(throws: StoreError.self) { try repo.overlayLayout(id).options }
    }

    // Defect 1, consumers: `setup --purge` never takes host entries for saved originals.
    @Test func purgeIgnoresSymlinkedRecordDirectories() throws {
        let tmp = try TemporaryDirectory()
        let outside = try Sentinel(tmp.sub("outside"))
        let repo = try repository(tmp)
        let id = "0badc0de-1111-3222-8333-444455556666"
        let dir = repo.containerDirectory(id)
        let outDir = (outside.path as NSString).deletingLastPathComponent
        #expect(sh("mkdir -p \(dir)/ROOT && ln -s \(outDir) \(dir)/.bind_orig_files && ln -s \(outDir) \(dir)/.mountpoints") == 0)
        _ = try repo.purgeContainer(id)
        #expect(outside.intact)
        #expect(!FileInfo.exists("\(dir)/ROOT/file"))
        #expect(!FileInfo.exists("\(dir)/.bind_orig_files") && !FileInfo.exists("\(dir)/.mountpoints"))
    }

    // Defect 6: a garbage container.json is an error that says what is wrong.
    @Test func garbageContainerJSONIsRefused() throws {
        let tmp = try TemporaryDirectory()
        let repo = try repository(tmp)
        let id = "0badc0de-1111-3222-8333-444455556666"
        let dir = repo.containerDirectory(id)
        #expect(sh("mkdir -p \(dir)/ROOT") == 0)
        for (content, why) in [
            ("{not json", "not JSON"), ("[1,2]", "not a JSON object"), ("{}", "empty"), ("{\"config\": 5}", "not an image configuration"),
        ] {
            try AtomicFile.write(content, to: "\(dir)/container.json")
            do { _ = try repo.containerConfigChecked(id); Issue.record("accepted \(content)") } catch let e as StoreError {
                #expect(e.description.hasPrefix("invalid container json metadata"), "\(e)")
                #expect(e.description.contains(why), "\(e)")
            }
        }
        unlink("\(dir)/container.json")
        #expect(throws: StoreError.self) { try repo.containerConfigChecked(id) }
        try AtomicFile.write(#"{"architecture":"amd64","config":{"Env":["A=1"]}}"#, to: "\(dir)/container.json")
        #expect(try repo.containerConfigChecked(id).config.config?.env == ["A=1"])
    }

    // Defect 6: staging left by a killed create is removed by the next command taking the
    // repository lock; the staging directory of a live operation is not.
    @Test func staleStagingIsRemovedAndLiveStagingKept() throws {
        let tmp = try TemporaryDirectory()
        let repo = try repository(tmp)
        let tgz = tmp.sub("rootfs.tgz")
        #expect(
            sh("mkdir -p \(tmp.sub("rootfs"))/etc && echo hi > \(tmp.sub("rootfs"))/etc/hello && tar -C \(tmp.sub("rootfs")) -czf \(tgz) .")
                == 0)
        let img = try LocalImageName(parsing: "stale/test:1")
        try repo.importImage(from: .file(tgz), as: img)
        // A killed create: its lock file exists and nobody holds it; an old-style one has none.
        let dead = "\(repo.containersDirectory)/.creating-0badc0de-dead-3222-8333-444455556666"
        let legacy = "\(repo.containersDirectory)/.creating-0badc0de-0000-3222-8333-444455556666"
        #expect(sh("mkdir -p \(dead)/ROOT/etc \(legacy)/ROOT && touch \(dead)/.lock \(dead)/ROOT/etc/x") == 0)
        // A live one: its owner holds the lock (an OFD lock on another open file description).
        let live = "\(repo.containersDirectory)/.creating-0badc0de-11fe-3222-8333-444455556666"
        #expect(sh("mkdir -p \(live)/ROOT") == 0)
        let held = try FileLock(path: "\(live)/.lock", kind: .exclusive)
        defer { held.unlock() }
        let id = try repo.createContainer(from: img)
        #expect(!FileInfo.exists(dead))
        #expect(!FileInfo.exists(legacy))
        #expect(FileInfo.isDirectory("\(live)/ROOT"), "the staging directory of a live create was removed")
        #expect(repo.listContainers().map(\.id) == [id])
        held.unlock()
        try repo.removeContainer(id)
        #expect(!FileInfo.exists(live), "once its owner is gone, the next command removes it")
    }

    // Defect 4: import copies the tarball (reflink or bytes), never hard-links it.
    @Test func importCopiesTheTarballAndCreateChecksV1Layers() throws {
        let tmp = try TemporaryDirectory()
        let repo = try repository(tmp)
        let rootfs = tmp.sub("rootfs")
        // The tarball on the same filesystem as the repository (a hard link would be possible).
        let tar = tmp.sub("rootfs.tar")
        #expect(sh("mkdir -p \(rootfs)/etc && echo hi > \(rootfs)/etc/hello && tar -C \(rootfs) -cf \(tar) .") == 0)
        let img = try LocalImageName(parsing: "copy/test:1")
        let layerID = try repo.importImage(from: .file(tar), as: img)
        let layer = "\(repo.layersDirectory)/\(layerID).layer"
        var a = stat(), b = stat()
        #expect(stat(tar, &a) == 0 && stat(layer, &b) == 0)
        #expect(a.st_ino != b.st_ino && a.st_nlink == 1, "the user's tarball is hard-linked into the repository")
        // Editing the tarball afterwards does not change the image.
        #expect(sh("echo changed > \(rootfs)/etc/hello && tar -C \(rootfs) -cf \(tar) .") == 0)
        let c1 = try repo.createContainer(from: img)
        #expect(AtomicFile.readString("\(repo.containerRoot(c1))/etc/hello") == "hi\n")
        // A layer file changed behind the repository's back (a hard link made by an older
        // version, or a shared repository) is refused at create, with one line.
        #expect(sh("cp \(tar) \(layer)") == 0)
        do { _ = try repo.createContainer(from: img); Issue.record("a changed v1 layer was accepted") } catch let e as StoreError {
            #expect(e.description.contains("changed since it was imported"), "\(e)")
        }
        #expect(repo.listContainers().map(\.id) == [c1])
        // --mv hands the file over.
        let img2 = try LocalImageName(parsing: "copy/test:2")
        try repo.importImage(from: .file(tar), as: img2, move: true)
        #expect(!FileInfo.exists(tar))
        _ = try repo.createContainer(from: img2)
    }

    // Defect 2: a new repository keeps containers and layers to the user.
    @Test func newRepositoryDirectoriesArePrivate() throws {
        let tmp = try TemporaryDirectory()
        let repo = try repository(tmp)
        var st = stat()
        #expect(stat(repo.containersDirectory, &st) == 0 && st.st_mode & 0o777 == 0o700)
        #expect(stat(repo.layersDirectory, &st) == 0 && st.st_mode & 0o777 == 0o700)
        // An existing repository set up differently is left alone.
        chmod(repo.containersDirectory, 0o750)
        try repo.create()
        #expect(stat(repo.containersDirectory, &st) == 0 && st.st_mode & 0o777 == 0o750)
    }
}
