import Foundation
import Testing
import TestSupport

/// Issue 10, defects 1, 2, 4 and 6 (store side), through the CLI as the unprivileged user.
@Suite("E2E trust boundaries", e2eEnabled)
struct TrustTests {
    /// `stat` of the sentinel as the user sees it: size, mtime, mode and content.
    static func stamp(_ box: E2ESandbox, _ path: String) async throws -> String {
        try await box.shell("stat -c '%s %Y %a' '\(path)'; cat '\(path)'; ls -a \"$(dirname '\(path)')\"").stdout
    }

    @Test("a hostile clone archive cannot reach a file outside the container")
    func hostileCloneArchive() async throws {
        let box = try sandbox()
        let outside = "\(box.home)/outside"
        try box.makeUserDirectory(outside)
        try box.writeUserFile("\(outside)/file", "precious\n")
        _ = try await box.shell("touch -d @1500000000 '\(outside)/file'")
        let before = try await Self.stamp(box, "\(outside)/file")
        let c = "\(box.scratch)/hostile"
        let record =
            #"{"path":"/../../../../../../../../../..\#(outside)/file","originalSize":0,"patchedSize":99999999999,"regions":[],"appendOffset":0,"appended":"","mtimeSeconds":0,"mtimeNanoseconds":0}"#
        let build = try await box.shell(
            """
            set -e; mkdir -p \(c)/ROOT/bin \(c)/upper \(c)/work
            cp /bin/busybox \(c)/ROOT/bin/busybox 2>/dev/null || cp /usr/bin/busybox \(c)/ROOT/bin/busybox
            ln -s busybox \(c)/ROOT/bin/sh; ln -s busybox \(c)/ROOT/bin/cat
            echo '{"config":{"Env":["PATH=/bin"]}}' > \(c)/container.json
            echo 'evil/image:1' > \(c)/imagerepo.name
            echo F1 > \(c)/execmode; echo F1 > \(c)/.conversion; echo F1 > \(c)/fakechroot.mode
            echo '\(record)' > \(c)/elf.patch.log
            echo '../../../../x' > \(c)/lowers
            ln -s \(outside) \(c)/.bind_orig_files; ln -s \(outside) \(c)/.mountpoints
            ln -s \(outside)/file \(c)/.lock; ln -s \(outside)/file \(c)/libfakechroot.so
            tar -C \(c) -cf \(box.scratch)/hostile.tar .
            """)
        try requireSuccess(build)
        let imported = try await box.udocker(["import", "--clone", "--name=evil", "\(box.scratch)/hostile.tar"])
        try requireSuccess(imported)
        let id = imported.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(
            box.listDirectory(box.containerDirectory(id)).sorted() == [
                ".lock", "ROOT", "container.json", "elf.patch.log", "execmode", "fakechroot.mode", "imagerepo.name",
            ])
        // The reproduction: leaving F1 undid the "patches" of the log, truncating the outside file.
        expectSuccess(try await box.udocker(["setup", "--execmode=N1", "evil"]))
        expectSuccess(try await box.udocker(["setup", "--purge", "evil"]))
        let r = try await box.run(["--nobanner", "evil", "sh", "-c", "echo ran"])
        expectSuccess(r)
        #expect(r.stdout == "ran\n", "\(r)")
        #expect(try await Self.stamp(box, "\(outside)/file") == before, "a file outside the container changed")
    }

    @Test("a garbage container.json stops run and inspect with one line")
    func garbageContainerJSON() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.busybox, name: "bb")
        _ = try await box.shell("echo '{garbage' > '\(box.containerDirectory(id))/container.json'")
        let r = try await box.run(["--nobanner", "bb", "/bin/echo", "ran"])
        expectOneLineError(r, status: nil, mentioning: ["invalid container json metadata"])
        #expect(!r.stdout.contains("ran"))
        expectOneLineError(try await box.udocker(["inspect", "bb"]), status: nil, mentioning: ["invalid container json metadata"])
    }

    @Test("a create killed half-way leaves staging that the next command taking the lock removes")
    func killedCreate() async throws {
        let box = try sandbox()
        try await box.pull(box.env.debian)
        let c = box.containersDirectory
        let r = try await box.shell(
            """
            '\(box.env.binary)' create '\(box.env.debian)' >/dev/null 2>&1 &
            pid=$!
            i=0; while [ $i -lt 4000 ] && ! ls -d '\(c)'/.creating-* >/dev/null 2>&1; do i=$((i+1)); sleep 0.005; done
            kill -9 $pid; wait $pid
            ls -a '\(c)'
            """)
        try #require(r.stdoutLines.contains { $0.hasPrefix(".creating-") }, "the create was not caught half-way: \(r)")
        let id = try await box.create(box.env.debian)
        #expect(box.listDirectory(c).filter { $0.hasPrefix(".") }.isEmpty, "\(box.listDirectory(c))")
        #expect(try await box.psLines().count == 1)
        expectSuccess(try await box.udocker(["rm", id]))
    }

    @Test("import copies the tarball: editing it later does not change the image")
    func importCopiesTheTarball() async throws {
        let box = try sandbox()
        try box.makeUserDirectory(box.scratch)
        let s = box.scratch
        try requireSuccess(
            try await box.shell("mkdir -p \(s)/rootfs/etc && echo one > \(s)/rootfs/etc/v && tar -C \(s)/rootfs -cf \(s)/r.tar ."))
        try requireSuccess(try await box.udocker(["import", "\(s)/r.tar", "mine/rootfs:1"]))
        let links = try await box.shell("stat -c %h \(s)/r.tar")
        #expect(links.stdout == "1\n", "the tarball is hard-linked into the repository: \(links)")
        try requireSuccess(try await box.shell("echo two > \(s)/rootfs/etc/v && tar -C \(s)/rootfs -cf \(s)/r.tar ."))
        let created = try await box.udocker(["create", "mine/rootfs:1"])
        try requireSuccess(created)
        let id = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(box.readFile("\(box.containerRoot(id))/etc/v") == "one\n")
    }

    @Test("a new repository's containers and layers are private; an image's /tmp keeps its sticky bit")
    func modes() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.debian, name: "deb")
        let st = try await box.shell("umask; stat -c '%a' \(box.containersDirectory) \(box.layersDirectory) \(box.containerRoot(id))/tmp")
        let lines = st.stdoutLines
        try #require(lines.count == 4, "\(st)")
        let umask = try #require(Int(lines[0], radix: 8), "\(st)")
        #expect(lines[1] == "700" && lines[2] == "700", "\(st)")
        #expect(lines[3] == String(0o1777 & ~umask, radix: 8), "an image's /tmp (1777) under umask \(lines[0]): \(st)")
    }
}
