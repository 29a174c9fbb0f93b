import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// clone / export / import / save / load / rmi --prune / setup --purge --fixperm, with archives made
/// by independent tools (skopeo, umoci, podman, GNU tar) and round trips through the Python udocker.
@Suite("E2E transfer", e2eEnabled)
struct TransferTests {
    // MARK: helpers

    /// The repository tree (type and size of every entry, lock files left out): compared before
    /// and after a failing command, it must not change.
    func tree(_ box: E2ESandbox) -> [String] {
        box.walk(box.udockerDir).filter { !$0.hasSuffix(".lock") }.map { p in
            let full = "\(box.udockerDir)/\(p)"
            var st = stat()
            lstat(full, &st)
            return "\(p) \(st.st_mode & S_IFMT) \((st.st_mode & S_IFMT) == S_IFDIR ? 0 : st.st_size)"
        }
    }

    /// A failing command: one Error line, exit 1, repository unchanged.
    func expectRefused(
        _ box: E2ESandbox, _ args: [String], mentioning words: [String] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let before = tree(box)
        let r = try await box.udocker(args)
        expectOneLineError(r, mentioning: words, sourceLocation: sourceLocation)
        let after = tree(box)
        #expect(
            before == after, "repository changed: +\(Set(after).subtracting(before)) -\(Set(before).subtracting(after))",
            sourceLocation: sourceLocation)
    }

    func sh(_ box: E2ESandbox, _ script: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let r = try await box.shell(script)
        try #require(r.succeeded, "\(r)", sourceLocation: sourceLocation)
    }

    func skopeo(_ box: E2ESandbox, _ image: String, tag: String = "latest", to dest: String) async throws {
        try await sh(
            box, "skopeo --insecure-policy copy -q --src-no-creds --src-tls-verify=false docker://\(box.env.image(image, tag: tag)) \(dest)"
        )
    }

    /// `repo/name:tag` lines of `udocker images`.
    func images(_ box: E2ESandbox) async throws -> [String] {
        try await box.imageLines().map { $0.split(separator: " ").first.map(String.init) ?? $0 }
    }

    /// create from a loaded image and check busybox is in it.
    func expectUsable(_ box: E2ESandbox, _ image: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let v = try await box.udocker(["verify", image])
        #expect(v.succeeded, "\(v)", sourceLocation: sourceLocation)
        let id = try await box.create(image, sourceLocation: sourceLocation)
        #expect(box.exists("\(box.containerRoot(id))/bin/busybox"), sourceLocation: sourceLocation)
    }

    func podmanAvailable() -> Bool { geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/podman") }

    // MARK: load from independent producers

    @Test("load: skopeo docker-archive and oci-archive, plain and gzip-compressed")
    func loadSkopeo() async throws {
        let box = try sandbox()
        let s = box.scratch
        try await skopeo(box, "busybox", to: "docker-archive:\(s)/bb-docker.tar:library/busybox:dock")
        try await skopeo(box, "busybox", to: "oci-archive:\(s)/bb-oci.tar:library/busybox:oci")
        try await sh(box, "gzip -k \(s)/bb-docker.tar && gzip -k \(s)/bb-oci.tar")
        let r1 = try await box.udocker(["load", "-i", "\(s)/bb-docker.tar"])
        expectSuccess(r1)
        // skopeo writes RepoTags as docker.io/library/busybox:dock; like docker load, that is busybox:dock
        #expect(r1.stdoutLines == ["busybox:dock"], "\(r1)")
        let r2 = try await box.udocker(["load", "--input=\(s)/bb-oci.tar"])
        expectSuccess(r2)
        #expect(r2.stdoutLines == ["library/busybox:oci"], "\(r2)")
        // gzip-compressed archives, one from stdin, with a name override
        let r3 = try await box.shell("\(box.env.binary) load renamed/bb < \(s)/bb-docker.tar.gz")
        expectSuccess(r3)
        #expect(r3.stdoutLines == ["renamed/bb:dock"], "\(r3)")
        let r4 = try await box.udocker(["load", "-i", "\(s)/bb-oci.tar.gz", "other/bb:7"])
        expectSuccess(r4)
        #expect(r4.stdoutLines == ["other/bb:7"], "\(r4)")
        for i in ["busybox:dock", "library/busybox:oci", "renamed/bb:dock", "other/bb:7"] { try await expectUsable(box, i) }
        // stored in the v2 layout, blobs named by digest
        #expect(box.exists(box.tagDirectory("library/busybox:oci") + "/v2"))
        #expect(box.exists(box.tagDirectory("library/busybox:oci") + "/manifest"))
    }

    @Test("load: an umoci-built OCI layout (tarred), several images and tags in one archive")
    func loadUmociMultiTag() async throws {
        let box = try sandbox()
        let s = box.scratch
        try await skopeo(box, "busybox", to: "oci:\(s)/layout:bb")
        try await sh(
            box,
            """
            cd \(s) && mkdir -p extra/opt && echo umoci > extra/opt/marker && \
            umoci unpack --rootless --image layout:bb bundle >/dev/null && \
            cp extra/opt/marker bundle/rootfs/etc/umoci-marker && \
            umoci repack --image layout:bb2 bundle >/dev/null && \
            umoci tag --image layout:bb2 bb3 && \
            tar -C layout -cf umoci.tar .
            """)
        let r = try await box.udocker(["load", "-i", "\(s)/umoci.tar", "umoci/img"])
        expectSuccess(r)
        #expect(Set(r.stdoutLines) == ["umoci/img:bb", "umoci/img:bb2", "umoci/img:bb3"], "\(r)")
        let id = try await box.create("umoci/img:bb3")
        #expect(box.readFile("\(box.containerRoot(id))/etc/umoci-marker") == "umoci\n")
        try await expectUsable(box, "umoci/img:bb")
    }

    @Test("load: a Docker >= 25 style archive (OCI layout + manifest.json with blobs/sha256 paths; hand-built: no Docker here)")
    func loadDocker25Layout() async throws {
        let box = try sandbox()
        let s = box.scratch
        try await skopeo(box, "busybox", to: "oci:\(s)/d25:latest")
        // manifest.json as Docker 25 writes it, pointing into blobs/sha256; an io.containerd.image.name annotation.
        try await sh(
            box,
            """
            cd \(s)/d25 && m=$(jq -r '.manifests[0].digest' index.json | cut -d: -f2) && \
            cfg=$(jq -r '.config.digest' blobs/sha256/$m | cut -d: -f2) && \
            layers=$(jq -c '[.layers[].digest | sub("sha256:"; "blobs/sha256/")]' blobs/sha256/$m) && \
            echo "[{\\"Config\\":\\"blobs/sha256/$cfg\\",\\"RepoTags\\":[\\"busybox:d25\\"],\\"Layers\\":$layers}]" > manifest.json && \
            jq '.manifests[0].annotations["io.containerd.image.name"]="docker.io/library/busybox:d25"' index.json > i && mv i index.json && \
            tar -cf ../d25.tar .
            """)
        let r = try await box.udocker(["load", "-i", "\(s)/d25.tar"])
        expectSuccess(r)
        #expect(r.stdoutLines == ["busybox:d25"], "\(r)")
        try await expectUsable(box, "busybox:d25")
    }

    @Test("load: podman save (symlinked layers); save output loads into podman (skipped unless root with podman)")
    func podmanRoundTrip() async throws {
        guard podmanAvailable() else { return }
        let box = try sandbox()
        let s = box.scratch
        // podman wants a runroot path shorter than 50 characters
        let runroot = "/tmp/udpod-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        let storage = "--root \(box.tmp)/podman-root --runroot \(runroot) --storage-driver vfs"
        func podman(_ args: String) async throws -> CommandResult {
            try await UserCommand(
                user: nil, environment: ["PATH": E2ESandbox.defaultPath, "HOME": box.tmp, "TMPDIR": box.tmp],
                workingDirectory: box.path
            ).run("/bin/sh", ["-c", "podman \(storage) \(args)"])
        }
        let pull = try await podman("pull -q --tls-verify=false \(box.env.busybox)")
        try #require(pull.succeeded, "\(pull)")
        let save = try await podman("save -q -o \(s)/podman.tar \(box.env.busybox)")
        try #require(save.succeeded, "\(save)")
        try box.chownToUser("\(s)/podman.tar")
        let r = try await box.udocker(["load", "-i", "\(s)/podman.tar"])
        expectSuccess(r)
        #expect(r.stdoutLines == [box.env.busybox], "\(r)")
        try await expectUsable(box, box.env.busybox)
        // ours → podman load
        let out = try await box.udocker(["save", "-o", "\(s)/ours.tar", box.env.busybox])
        expectSuccess(out)
        let load = try await podman("load -i \(s)/ours.tar")
        #expect(load.succeeded, "\(load)")
        let run = try await podman("image inspect \(box.env.busybox)")
        #expect(run.succeeded, "\(run)")
        _ = try await podman("rmi -a -f")
        _ = try await UserCommand(user: nil, environment: ["PATH": E2ESandbox.defaultPath], workingDirectory: "/")
            .run("/bin/sh", ["-c", "chmod -R u+rwX \(box.tmp)/podman-root 2>/dev/null; rm -rf \(box.tmp)/podman-root \(runroot)"])
    }

    // MARK: save

    @Test("save: a docker-archive that skopeo reads back and that round-trips through load")
    func saveSkopeo() async throws {
        let box = try sandbox()
        let s = box.scratch
        try await box.pull(box.env.busybox)
        try await box.pull(box.env.multi)
        let r = try await box.udocker(["save", "-o", "\(s)/out.tar", box.env.busybox, box.env.multi])
        expectSuccess(r)
        // skopeo reads both images and copies them out again
        try await sh(box, "skopeo --insecure-policy copy -q docker-archive:\(s)/out.tar:\(box.env.multi) oci:\(s)/check:m")
        try await sh(box, "skopeo --insecure-policy inspect docker-archive:\(s)/out.tar:\(box.env.busybox) >/dev/null")
        // an existing output file is never overwritten
        try await expectRefused(box, ["save", "-o", "\(s)/out.tar", box.env.busybox], mentioning: ["exists"])
        // load into a fresh repository
        let other = try sandbox("saveSkopeo-other")
        let l = try await other.udocker(["load", "-i", "\(s)/out.tar"])
        expectSuccess(l)
        #expect(Set(l.stdoutLines) == [box.env.busybox, box.env.multi], "\(l)")
        try await expectUsable(other, box.env.multi)
        // stdout
        let p = try await box.shell("\(box.env.binary) save \(box.env.busybox) | tar -t | grep -c layer.tar")
        expectSuccess(p)
    }

    // MARK: export / import

    @Test("export + import: rootfs tar to image (v1 layout), --tocontainer, --mv, stdin, GNU tar rootfs")
    func exportImport() async throws {
        let box = try sandbox()
        let s = box.scratch
        let id = try await box.pullAndCreate(box.env.busybox, name: "bb")
        expectSuccess(try await box.udocker(["export", "-o", "\(s)/bb.tar", "bb"]))
        try await sh(box, "tar -tf \(s)/bb.tar | grep -qx './bin/busybox'")
        expectSuccess(try await box.udocker(["import", "\(s)/bb.tar", "imported/bb:1"]))
        let dir = box.tagDirectory("imported/bb:1")
        #expect(box.exists("\(dir)/v1") && box.exists("\(dir)/ancestry"), "v1 layout: \(box.listDirectory(dir))")
        try await expectUsable(box, "imported/bb:1")
        // --mv consumes the file; stdin works
        try await sh(box, "cp \(s)/bb.tar \(s)/mv.tar")
        expectSuccess(try await box.udocker(["import", "--mv", "\(s)/mv.tar", "imported/bb:mv"]))
        #expect(!box.exists("\(s)/mv.tar"))
        let st = try await box.shell("\(box.env.binary) export - bb | \(box.env.binary) import - imported/bb:stdin")
        expectSuccess(st)
        try await expectUsable(box, "imported/bb:stdin")
        // --tocontainer with a GNU tar rootfs (gzip)
        try await sh(
            box,
            "mkdir -p \(s)/rootfs && cp -a \(box.containerRoot(id))/. \(s)/rootfs/ && echo gnu > \(s)/rootfs/gnu && tar -C \(s)/rootfs -czf \(s)/rootfs.tgz ."
        )
        let c = try await box.udocker(["import", "--tocontainer", "--name=gnu", "\(s)/rootfs.tgz"])
        expectSuccess(c)
        let cid = c.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(isContainerID(cid), "\(c)")
        #expect(box.readFile("\(box.containerRoot(cid))/gnu") == "gnu\n")
        #expect(try await box.psLines().contains { $0.hasPrefix(cid) && $0.contains("'gnu'") && $0.contains("IMPORTED:unknown") })
    }

    @Test("clone and export --clone / import --clone keep ROOT, metadata and the execution mode")
    func cloneRoundTrip() async throws {
        let box = try sandbox()
        let s = box.scratch
        let id = try await box.pullAndCreate(box.env.busybox, name: "bb")
        try await box.use(.p1, for: "bb")
        let c = try await box.udocker(["clone", "--name=copy", "bb"])
        expectSuccess(c)
        let copy = c.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(isContainerID(copy) && copy != id, "\(c)")
        #expect(box.exists("\(box.containerRoot(copy))/bin/busybox"))
        #expect(box.readFile("\(box.containerDirectory(copy))/execmode")?.hasPrefix("P1") == true)
        #expect(try await box.psLines(["-m"]).contains { $0.hasPrefix("\(copy) . W P1") && $0.contains("'copy'") })
        expectSuccess(try await box.udocker(["export", "--clone", "-o", "\(s)/clone.tar", "bb"]))
        let i = try await box.udocker(["import", "--clone", "--name=back", "\(s)/clone.tar"])
        expectSuccess(i)
        let back = i.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(box.readFile("\(box.containerDirectory(back))/execmode")?.hasPrefix("P1") == true)
        #expect(box.readFile("\(box.containerDirectory(back))/imagerepo.name") == box.env.busybox)
        #expect(box.exists("\(box.containerRoot(back))/bin/busybox"))
        // name clashes and bad names
        try await expectRefused(box, ["clone", "--name=copy", "bb"], mentioning: ["already exists"])
        try await expectRefused(box, ["clone", "--name=a/b", "bb"], mentioning: ["invalid"])
        try await expectRefused(box, ["import", "--clone", "--name=back", "\(s)/clone.tar"], mentioning: ["already exists"])
        try await expectRefused(box, ["import", "--tocontainer", "--name=x y", "\(s)/clone.tar"], mentioning: ["invalid"])
        try await expectRefused(box, ["name", copy, "bb"], mentioning: ["already exists"])
    }

    // MARK: failures leave the repository as it was

    @Test("bad archives: truncated, corrupt, missing blob, path traversal, not an archive")
    func badArchives() async throws {
        let box = try sandbox()
        let s = box.scratch
        try await box.pull(box.env.busybox)
        try await skopeo(box, "busybox", to: "docker-archive:\(s)/good.tar:x/y:z")
        try await skopeo(box, "busybox", to: "oci:\(s)/layout:t")
        try await sh(
            box,
            """
            cd \(s) && head -c $(( $(stat -c %s good.tar) / 2 )) good.tar > truncated.tar && \
            gzip -c good.tar > good.tgz && head -c 300000 good.tgz > truncated.tgz && \
            cp good.tgz corrupt.tgz && printf 'XXXXXXXXXXXXXXXX' | dd of=corrupt.tgz bs=1 seek=5000 conv=notrunc 2>/dev/null && \
            cd layout && l=$(jq -r '.manifests[0].digest' index.json | cut -d: -f2) && \
            layer=$(jq -r '.layers[0].digest' blobs/sha256/$l | cut -d: -f2) && \
            tar -cf ../missing.tar --exclude=blobs/sha256/$layer . && \
            cp blobs/sha256/$layer ../saved-layer && head -c 1000 ../saved-layer > blobs/sha256/$layer && tar -cf ../badblob.tar . && \
            cd .. && python3 -c "import tarfile,io; t=tarfile.open('traversal.tar','w'); d=b'[]'; i=tarfile.TarInfo('../../escape'); i.size=len(d); t.addfile(i, io.BytesIO(d)); t.close()" && \
            echo 'not an archive' > text.tar
            """)
        for (f, word) in [
            ("truncated.tar", "truncated"), ("truncated.tgz", "truncated"), ("corrupt.tgz", "gzip"),
            ("missing.tar", "missing"), ("badblob.tar", "mismatch"), ("traversal.tar", "unsafe"),
            ("text.tar", "archive"),
        ] {
            try await expectRefused(box, ["load", "-i", "\(s)/\(f)"], mentioning: [word])
        }
        #expect(!box.exists("\(box.home)/escape") && !box.exists("\(box.path)/escape") && !box.exists("\(box.udockerDir)/escape"))
        for f in ["truncated.tar", "corrupt.tgz", "traversal.tar", "text.tar"] {
            try await expectRefused(box, ["import", "\(s)/\(f)", "imp/x:1"])
            try await expectRefused(box, ["import", "--tocontainer", "\(s)/\(f)"])
            try await expectRefused(box, ["import", "--clone", "\(s)/\(f)"])
        }
        try await expectRefused(box, ["import", "\(s)/no-such-file.tar", "imp/x:1"], mentioning: ["does not exist"])
        try await expectRefused(box, ["load", "-i", "\(s)/no-such-file.tar"])
        #expect(try await images(box) == [box.env.busybox])
    }

    @Test("rm refuses a protected or running container; rm removes several at once")
    func rmProtectedAndRunning() async throws {
        let box = try sandbox()
        let a = try await box.pullAndCreate(box.env.busybox, name: "a")
        let b = try await box.create(box.env.busybox, name: "b")
        expectSuccess(try await box.udocker(["protect", "a"]))
        try await expectRefused(box, ["rm", "a"], mentioning: ["protected"])
        expectSuccess(try await box.udocker(["unprotect", "a"]))
        // a running container (holds its lock) cannot be removed
        let bg = try await box.shell(
            "(\(box.env.binary) run a sh -c 'sleep 6' >/dev/null 2>&1 &) ; sleep 2; \(box.env.binary) rm a; echo rc=$?")
        #expect(bg.stdout.contains("rc=1") && bg.stderr.contains("in use"), "\(bg)")
        try await Task.sleep(for: .seconds(5))
        let both = try await box.udocker(["rm", a, b])
        expectSuccess(both)
        #expect(try await box.psLines().isEmpty)
    }

    @Test("kill -9 during load and import leaves nothing images/ps/verify report; rmi --prune cleans up")
    func killNine() async throws {
        let box = try sandbox()
        let s = box.scratch
        try await box.pull(box.env.busybox)
        try await skopeo(box, "debian", tag: box.env.debianTag, to: "docker-archive:\(s)/deb.tar:deb/ian:1")
        _ = try await box.create(box.env.busybox, name: "bb")
        for (i, cmd) in [
            "load -i \(s)/deb.tar", "import \(s)/deb.tar deb/imp:1", "import --tocontainer \(s)/deb.tar", "clone bb",
            "save -o \(s)/killed.tar \(box.env.busybox)",
        ].enumerated() {
            for delay in ["0.05", "0.3"] {
                _ = try await box.shell("\(box.env.binary) \(cmd) >/dev/null 2>&1 & p=$!; sleep \(delay); kill -9 $p; wait $p; true")
                let imgs = try await images(box)
                for img in imgs {
                    let v = try await box.udocker(["verify", img])
                    #expect(v.succeeded, "after kill -9 of '\(cmd)' (\(i)): \(v)")
                }
                let ps = try await box.psLines()
                #expect(ps.allSatisfy { $0.contains(" W ") }, "\(ps)")
                if box.exists("\(s)/killed.tar") {  // finished before the kill: then it is complete
                    let t = try await box.shell("tar -tf \(s)/killed.tar >/dev/null && rm \(s)/killed.tar")
                    #expect(t.succeeded, "half-written output under the requested name: \(t)")
                }
            }
        }
        let p = try await box.udocker(["rmi", "--prune", "-f"])
        expectSuccess(p)
        let leftovers =
            box.listDirectory(box.layersDirectory).filter { $0.hasPrefix(".") && $0 != ".lock" }
            + box.listDirectory(box.containersDirectory).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "\(leftovers)\n\(p)")
        for img in try await images(box) { expectSuccess(try await box.udocker(["verify", img])) }
    }

    @Test("rmi --prune removes layers no tag references and keeps the rest")
    func prune() async throws {
        let box = try sandbox()
        try await box.pull(box.env.busybox)
        try await box.pull(box.env.multi)
        let before = box.listDirectory(box.layersDirectory).filter { !$0.hasPrefix(".") }
        try box.writeUserFile("\(box.layersDirectory)/sha256:\(String(repeating: "ab", count: 32))", "orphan")
        let kept = try await box.udocker(["rmi", "--prune"])  // grace period: the fresh orphan stays
        expectSuccess(kept)
        #expect(box.exists("\(box.layersDirectory)/sha256:\(String(repeating: "ab", count: 32))"))
        expectSuccess(try await box.udocker(["rmi", "--prune", "-f"]))
        #expect(box.listDirectory(box.layersDirectory).filter { !$0.hasPrefix(".") } == before)
        for i in [box.env.busybox, box.env.multi] { expectSuccess(try await box.udocker(["verify", i])) }
    }

    @Test("setup --fixperm and --purge")
    func setupPurgeFixperm() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.busybox, name: "bb")
        let root = box.containerRoot(id)
        try await sh(
            box,
            "mkdir -p \(root)/locked/sub && echo x > \(root)/locked/sub/f && chmod 000 \(root)/locked/sub/f && chmod 000 \(root)/locked")
        expectSuccess(try await box.udocker(["setup", "--fixperm", "bb"]))
        #expect(box.readFile("\(root)/locked/sub/f") == "x\n")
        let dir = box.containerDirectory(id)
        try await sh(
            box,
            "mkdir -p \(dir)/.mountpoints \(root)/mnt/new && ln -s /mnt \(dir)/.mountpoints/#mnt#new && mkdir -p \(dir)/.bind_orig_files && echo orig > \(dir)/.bind_orig_files/#etc#bound && ln -s /x \(root)/etc/bound"
        )
        expectSuccess(try await box.udocker(["setup", "--purge", "bb"]))
        #expect(!box.exists("\(dir)/.mountpoints") && !box.exists("\(root)/mnt/new") && box.exists("\(root)/mnt"))
        #expect(box.readFile("\(root)/etc/bound") == "orig\n")
        #expect(!box.exists("\(dir)/.bind_orig_files"))
    }

    // MARK: Python udocker 1.3.17 compatibility

    @Test("Python udocker: its export --clone imports into ours and ours into it; save output loads both ways")
    func pythonRoundTrips() async throws {
        let box = try sandbox()
        let s = box.scratch
        let env = ["UDOCKER_REGISTRY": "http://\(box.env.registry)"]
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        expectSuccess(try await box.udocker(["tag", box.env.busybox, "bb/busybox:1"]))
        // Python export --clone → our import --clone
        let pe = try await box.python(["export", "--clone", "-o", "\(s)/py-clone.tar", "bb"], environment: env)
        try #require(pe.succeeded, "\(pe)")
        let i = try await box.udocker(["import", "--clone", "--name=frompy", "\(s)/py-clone.tar"])
        expectSuccess(i)
        let fromPy = i.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(box.exists("\(box.containerRoot(fromPy))/bin/busybox"))
        // our export --clone → Python import --clone
        expectSuccess(try await box.udocker(["export", "--clone", "-o", "\(s)/our-clone.tar", "bb"]))
        let pi = try await box.python(["import", "--clone", "\(s)/our-clone.tar"], environment: env)
        #expect(pi.succeeded, "\(pi)")
        let pyID = pi.stdoutLines.last?.trimmingCharacters(in: .whitespaces) ?? ""
        #expect(isContainerID(pyID), "\(pi)")
        #expect(box.exists("\(box.containerRoot(pyID))/bin/busybox"))
        let pps = try await box.python(["ps"], environment: env)
        #expect(pps.stdout.contains(pyID), "\(pps)")
        // our save → Python load → Python create
        expectSuccess(try await box.udocker(["save", "-o", "\(s)/ours.tar", "bb/busybox:1"]))
        let py2 = try sandbox("pythonRoundTrips-py")
        let pl = try await py2.python(["load", "-i", "\(s)/ours.tar"], environment: env)
        #expect(pl.succeeded && pl.stdout.contains("bb/busybox:1"), "\(pl)")
        let pc = try await py2.python(["create", "--name=c", "bb/busybox:1"], environment: env)
        #expect(pc.succeeded, "\(pc)")
        let pcid = pc.stdoutLines.last?.trimmingCharacters(in: .whitespaces) ?? ""
        #expect(py2.exists("\(py2.containerRoot(pcid))/bin/busybox"), "\(pc)")
        // Python save → our load
        let ps = try await box.python(["save", "-o", "\(s)/py.tar", "bb/busybox:1"], environment: env)
        #expect(ps.succeeded, "\(ps)")
        let other = try sandbox("pythonRoundTrips-ours")
        let l = try await other.udocker(["load", "-i", "\(s)/py.tar"])
        expectSuccess(l)
        #expect(l.stdoutLines == ["bb/busybox:1"], "\(l)")
        try await expectUsable(other, "bb/busybox:1")
        // Python reads our imported (v1) image
        expectSuccess(try await box.udocker(["export", "-o", "\(s)/root.tar", "bb"]))
        expectSuccess(try await box.udocker(["import", "\(s)/root.tar", "imp/root:1"]))
        let pcr = try await box.python(["create", "imp/root:1"], environment: env)
        #expect(pcr.succeeded, "\(pcr)")
    }
}
