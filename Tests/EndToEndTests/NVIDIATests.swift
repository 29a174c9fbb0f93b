import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `run --nvidia` / `--gpus` against fake driver trees (scripts/fixtures/nvidia-driver-tree.sh,
/// built here as root: device nodes need mknod) pointed to by UDOCKER_NVIDIA_ROOT, with the
/// `cuda-e2e` image (Debian + CUDA_VERSION=12.6.0). `cudacount`, copied into the container,
/// dlopen's libcuda.so.1 and prints what it reports: the fake libcuda counts the /dev/nvidiaN
/// it can see and honours CUDA_VISIBLE_DEVICES.
@Suite("E2E NVIDIA", e2eEnabled, .enabled(if: getuid() == 0, "building the fake driver tree needs root (mknod)"))
struct NVIDIATests {
    static let version = "560.35.03"
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/fixtures/nvidia-driver-tree.sh").path

    /// Builds `<scratch>/nv/<name>` and returns its path.
    static func driverTree(_ box: E2ESandbox, _ name: String, version: String = version, _ args: [String] = []) throws -> String {
        let root = "\(box.scratch)/nv/\(name)"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script, root, version] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "fixture script: \(String(decoding: out, as: UTF8.self))")
        return root
    }

    /// A cuda-e2e container with cudacount in /usr/local/bin.
    static func container(_ box: E2ESandbox, tree: String) async throws -> String {
        let id = try await box.pullAndCreate(box.env.image("cuda-e2e", tag: "12.6"), name: "gpu")
        let dest = box.containerRoot(id) + "/usr/local/bin/cudacount"
        try FileManager.default.copyItem(atPath: (tree as NSString).deletingLastPathComponent + "/cudacount", toPath: dest)
        try box.chownToUser(dest)
        return id
    }

    func run(_ box: E2ESandbox, _ tree: String, _ args: [String], env: [String: String] = [:]) async throws -> CommandResult {
        try await box.run(["--nobanner"] + args, environment: ["UDOCKER_NVIDIA_ROOT": tree].merging(env) { $1 })
    }

    @Test("N1: driver bound read-only, GPUs selected, stale and unrelated files left out")
    func native() async throws {
        let box = try sandbox()
        let tree = try Self.driverTree(box, "good")
        _ = try await Self.container(box, tree: tree)

        let all = try await run(box, tree, ["--nvidia", "gpu", "cudacount"])
        expectSuccess(all)
        #expect(all.stdout == "cuda devices: 2\ncuda driver: 12060\n", "\(all)")

        let one = try await run(
            box, tree,
            [
                "--gpus=1", "gpu", "sh", "-c",
                "ls /dev | grep nvidia; ls /usr/local/nvidia/lib64 /usr/local/nvidia/bin; nvidia-smi; "
                    + "cat /etc/OpenCL/vendors/nvidia.icd /lib/firmware/nvidia/\(Self.version)/gsp.bin; "
                    + "echo x >> /usr/local/nvidia/lib64/libcuda.so.1 || echo read-only; cudacount",
            ])
        expectSuccess(one)
        let lines = one.stdoutLines
        #expect(
            lines.filter { $0.hasPrefix("nvidia") && !$0.contains(".so") && !$0.contains(" ") }
                == ["nvidia-uvm", "nvidia-uvm-tools", "nvidia1", "nvidiactl", "nvidia-smi"], "\(one)")
        #expect(
            lines.contains("libcuda.so.\(Self.version)") && lines.contains("libcuda.so.1") && lines.contains("libnvidia-ml.so.1"), "\(one)")
        #expect(!one.stdout.contains("535.104.05") && !one.stdout.contains("unrelated"), "stale or unrelated library bound: \(one)")
        #expect(lines.contains("NVIDIA-SMI \(Self.version)  Driver Version: \(Self.version)  GPUs: 1"), "\(one)")
        #expect(lines.contains("libnvidia-opencl.so.1") && lines.contains("fake GSP firmware \(Self.version)"), "\(one)")
        #expect(lines.contains("read-only") && lines.suffix(2) == ["cuda devices: 1", "cuda driver: 12060"], "\(one)")

        // NVIDIA_VISIBLE_DEVICES as enroot: none = driver without GPUs; void = no GPU support.
        let none = try await run(box, tree, ["--nvidia", "-e", "NVIDIA_VISIBLE_DEVICES=none", "gpu", "cudacount"])
        #expect(none.stdout.hasPrefix("cuda devices: 0\n"), "\(none)")
        let void = try await run(box, tree, ["--nvidia", "-e", "NVIDIA_VISIBLE_DEVICES=void", "gpu", "cudacount"])
        #expect(void.status == 3 && void.stderr.contains("libcuda.so.1"), "\(void)")
        let cvd = try await run(box, tree, ["--nvidia", "-e", "CUDA_VISIBLE_DEVICES=1", "gpu", "cudacount"])
        #expect(cvd.stdout.hasPrefix("cuda devices: 1\n"), "\(cvd)")
        // Without --nvidia nothing of the driver is there.
        let plain = try await run(box, tree, ["gpu", "cudacount"])
        #expect(plain.status == 3, "\(plain)")
        expectOneLineError(try await run(box, tree, ["--gpus=7", "gpu", "true"]), status: 2, mentioning: ["no GPU 7", "0,1"])
    }

    @Test("doctor reports the driver, its CUDA and the GPUs; a mismatch fails the GPU line only")
    func doctor() async throws {
        let box = try sandbox()
        let good = try Self.driverTree(box, "good")
        let ok = try await box.udocker(["doctor"], environment: ["UDOCKER_NVIDIA_ROOT": good])
        #expect(ok.status == 0, "\(ok)")
        let line = ok.stdoutLines.first { $0.contains("GPU (NVIDIA)") } ?? ""
        #expect(
            line.hasPrefix("✔") && line.contains("NVIDIA driver \(Self.version) (CUDA 12.6)")
                && line.contains("GPUs: nvidia0 nvidia1"), "\(ok)")
        let mismatch = try Self.driverTree(box, "mismatch", ["--kmod=565.57.01"])
        let bad = try await box.udocker(["doctor"], environment: ["UDOCKER_NVIDIA_ROOT": mismatch])
        #expect(bad.status == 0, "a GPU problem must not fail the engines: \(bad)")
        let badLine = bad.stdoutLines.first { $0.contains("GPU (NVIDIA)") } ?? ""
        #expect(badLine.hasPrefix("✘") && badLine.contains("565.57.01"), "\(bad)")
        let none = try await box.udocker(["doctor"], environment: ["UDOCKER_NVIDIA_ROOT": "\(box.scratch)/nv"])
        #expect((none.stdoutLines.first { $0.contains("GPU (NVIDIA)") } ?? "").hasPrefix("! GPU (NVIDIA)  no NVIDIA driver"), "\(none)")
    }

    @Test("pre-flight: no driver, version mismatch, too-new glibc, no glibc, CUDA newer than the driver")
    func preflight() async throws {
        let box = try sandbox()
        let good = try Self.driverTree(box, "good")
        _ = try await Self.container(box, tree: good)
        let empty = "\(box.scratch)/nv/empty"
        try box.makeUserDirectory(empty)
        expectOneLineError(try await run(box, empty, ["--nvidia", "gpu", "true"]), status: 2, mentioning: ["no NVIDIA driver"])
        let mismatch = try Self.driverTree(box, "mismatch", ["--kmod=565.57.01"])
        expectOneLineError(
            try await run(box, mismatch, ["--nvidia", "gpu", "true"]), status: 2,
            mentioning: ["version mismatch", "libcuda.so.1 is \(Self.version)", "kernel module is 565.57.01"])
        let glibc = try Self.driverTree(box, "glibc", ["--glibc-too-new"])
        expectOneLineError(
            try await run(box, glibc, ["--nvidia", "gpu", "true"]), status: 2,
            mentioning: ["needs GLIBC_2.99", "container has GLIBC_2.36"])
        // Driver 470 supports CUDA 11.4; the image wants 12.6.
        let old = try Self.driverTree(box, "old", version: "470.256.02")
        expectOneLineError(try await run(box, old, ["--nvidia", "gpu", "true"]), status: 2, mentioning: ["CUDA 12.6", "11.4"])
        let forced = try await run(box, old, ["--nvidia", "-e", "NVIDIA_DISABLE_REQUIRE=1", "gpu", "cudacount"])
        expectSuccess(forced)
        #expect(forced.stdout == "cuda devices: 2\ncuda driver: 11040\n", "\(forced)")
        // busybox-static: no glibc for the driver's libraries.
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        expectOneLineError(try await run(box, good, ["--nvidia", "bb", "true"]), status: 2, mentioning: ["no glibc"])
    }

    @Test("P1, R1 and F3 provide the driver; P1 and R1 select GPUs", arguments: ["P1", "R1", "F3"])
    func engines(_ mode: String) async throws {
        let box = try sandbox("nvidia-\(mode)")
        let tree = try Self.driverTree(box, "good")
        _ = try await Self.container(box, tree: tree)
        try requireSuccess(try await box.udocker(["setup", "--execmode=\(mode)", "gpu"]))
        let all = try await run(box, tree, ["--nvidia", "gpu", "cudacount"])
        expectSuccess(all)
        let smi = try await run(box, tree, ["--gpus=0", "gpu", "nvidia-smi"])
        expectSuccess(smi)
        let one = try await run(box, tree, ["--gpus=0", "gpu", "cudacount"])
        expectSuccess(one)
        if mode == "F3" {
            // Fakechroot sees the host /dev as it is: no device from the fake tree is added.
            #expect(all.stdout == "cuda devices: 0\ncuda driver: 12060\n", "\(all)")
            #expect(all.stderr.contains("GPUs cannot be selected"), "\(all)")
        } else {
            #expect(all.stdout == "cuda devices: 2\ncuda driver: 12060\n", "\(all)")
            #expect(one.stdout == "cuda devices: 1\ncuda driver: 12060\n", "\(one)")
            #expect(smi.stdout.contains("GPUs: 1"), "\(smi)")
        }
    }

    @Test("setup --nvidia copies the running driver into ROOT (udocker's way); --force replaces it")
    func setupCopy() async throws {
        let box = try sandbox()
        let tree = try Self.driverTree(box, "good")
        let id = try await Self.container(box, tree: tree)
        let env = ["UDOCKER_NVIDIA_ROOT": tree]
        try requireSuccess(try await box.udocker(["setup", "--nvidia", "gpu"], environment: env))
        let lib = box.containerRoot(id) + "/usr/lib/x86_64-linux-gnu"
        #expect(box.exists("\(lib)/libcuda.so.\(Self.version)") && box.isSymlink("\(lib)/libcuda.so.1"))
        #expect(!box.exists("\(lib)/libcuda.so.535.104.05") && !box.exists("\(lib)/libunrelated.so.1"))
        #expect(box.exists(box.containerRoot(id) + "/usr/bin/nvidia-smi"))
        let shown = try await box.udocker(["setup", "gpu"])
        #expect(shown.stdoutLines.contains("nvidiamode: True"), "\(shown)")
        expectOneLineError(
            try await box.udocker(["setup", "--nvidia", "gpu"], environment: env), mentioning: ["already exists", "--force"])
        expectSuccess(try await box.udocker(["setup", "--nvidia", "--force", "gpu"], environment: env))
        let r = try await box.run(["--nobanner", "gpu", "cudacount"])
        expectSuccess(r)
        #expect(r.stdout.hasSuffix("cuda driver: 12060\n"), "\(r)")
        // As udocker: the R modes get the devices of a container set up this way.
        try requireSuccess(try await box.udocker(["setup", "--execmode=R1", "gpu"]))
        let r1 = try await box.run(["--nobanner", "gpu", "cudacount"], environment: env)
        expectSuccess(r1)
        #expect(r1.stdout == "cuda devices: 2\ncuda driver: 12060\n", "\(r1)")
        let empty = "\(box.scratch)/nv/empty"
        try box.makeUserDirectory(empty)
        expectOneLineError(
            try await box.udocker(["setup", "--nvidia", "--force", "gpu"], environment: ["UDOCKER_NVIDIA_ROOT": empty]),
            mentioning: ["no NVIDIA driver"])
    }

    // MARK: issue 23 §5: GPUs set up the udocker way

    @Test("setup --nvidia copies what udocker 1.3.17 copies: video, frame capture, TLS, Vulkan ICD, the tools")
    func setupCopiesUdockersList() async throws {
        let box = try sandbox()
        let tree = try Self.driverTree(box, "good")
        let id = try await Self.container(box, tree: tree)
        try requireSuccess(try await box.udocker(["setup", "--nvidia", "gpu"], environment: ["UDOCKER_NVIDIA_ROOT": tree]))
        let root = box.containerRoot(id)
        let lib = root + "/usr/lib/x86_64-linux-gnu"
        for name in ["libnvidia-encode", "libnvcuvid", "libnvidia-fbc", "libnvidia-tls", "libnvidia-cfg"] {
            #expect(box.exists("\(lib)/\(name).so.\(Self.version)"), "\(name) not copied: \(box.listDirectory(lib))")
        }
        #expect(box.isSymlink("\(lib)/libnvidia-encode.so.1") && box.isSymlink("\(lib)/libnvcuvid.so.1"))
        #expect(box.exists(root + "/usr/bin/nvidia-settings") && box.exists(root + "/etc/vulkan/icd.d/nvidia_icd.json"))
        #expect(!box.exists("\(lib)/libnvidia-fatbinaryloader.so.535.104.05") && !box.exists("\(lib)/libunrelated.so.1"))

        // Side by side: every file of the running driver the Python udocker copies (it finds the
        // driver's directory through LD_LIBRARY_PATH), ours copied too.
        let pyID = try await box.create(box.env.image("cuda-e2e", tag: "12.6"), name: "pygpu")
        let py = try await box.python(["setup", "--nvidia", "pygpu"], environment: ["LD_LIBRARY_PATH": tree + "/usr/lib/x86_64-linux-gnu"])
        try requireSuccess(py)
        let driverFiles = { (dir: String) in Set(box.listDirectory(dir).filter { $0.hasSuffix(".so.\(Self.version)") }) }
        let theirs = driverFiles(box.containerRoot(pyID) + "/usr/lib/x86_64-linux-gnu")
        let ours = driverFiles(lib)
        #expect(theirs.contains("libnvidia-encode.so.\(Self.version)"), "the Python udocker copied: \(theirs.sorted())\n\(py)")
        #expect(theirs.subtracting(ours).isEmpty, "copied by udocker 1.3.17, not by us: \(theirs.subtracting(ours).sorted())")
    }

    @Test(
        "a container set up with setup --nvidia gets the GPU selection without --nvidia",
        arguments: ["N1", "P1", "R1"])
    func copiedDriverSelectsDevices(_ mode: String) async throws {
        let box = try sandbox("nvidia-copied-\(mode)")
        let tree = try Self.driverTree(box, "good")
        _ = try await Self.container(box, tree: tree)
        try requireSuccess(try await box.udocker(["setup", "--nvidia", "gpu"], environment: ["UDOCKER_NVIDIA_ROOT": tree]))
        if mode != "N1" { try requireSuccess(try await box.udocker(["setup", "--execmode=\(mode)", "gpu"])) }
        let all = try await run(box, tree, ["gpu", "cudacount"])
        expectSuccess(all)
        #expect(all.stdout == "cuda devices: 2\ncuda driver: 12060\n", "\(all)")
        let one = try await run(box, tree, ["-e", "NVIDIA_VISIBLE_DEVICES=1", "gpu", "cudacount"])
        expectSuccess(one)
        #expect(one.stdout == "cuda devices: 1\ncuda driver: 12060\n", "\(one)")
        let smi = try await run(box, tree, ["--gpus=0", "gpu", "nvidia-smi"])
        expectSuccess(smi)
        #expect(smi.stdout.contains("GPUs: 1"), "\(smi)")
        let none = try await run(box, tree, ["gpu", "cudacount"], env: ["NVIDIA_VISIBLE_DEVICES": "none"])
        #expect(none.stdout.hasPrefix("cuda devices: 0\n"), "\(none)")
    }

    @Test("the copied driver is checked against the running one before exec")
    func copiedDriverVersionIsChecked() async throws {
        let box = try sandbox()
        let tree = try Self.driverTree(box, "good")
        _ = try await Self.container(box, tree: tree)
        try requireSuccess(try await box.udocker(["setup", "--nvidia", "gpu"], environment: ["UDOCKER_NVIDIA_ROOT": tree]))
        // The host's driver was updated since: CUDA would fail inside with a version mismatch.
        let updated = try Self.driverTree(box, "updated", version: "565.57.01")
        expectOneLineError(
            try await run(box, updated, ["gpu", "cudacount"]), status: 2,
            mentioning: ["560.35.03", "565.57.01", "setup --nvidia --force"])
        // --nvidia binds the running driver first in the library path: no re-setup needed.
        let bound = try await run(box, updated, ["--nvidia", "gpu", "cudacount"])
        expectSuccess(bound)
        // No driver at all on this host (a login node): the container runs, as with udocker.
        let empty = "\(box.scratch)/nv/empty"
        try box.makeUserDirectory(empty)
        expectSuccess(try await run(box, empty, ["gpu", "true"]))
        expectSuccess(try await box.udocker(["setup", "--nvidia", "--force", "gpu"], environment: ["UDOCKER_NVIDIA_ROOT": updated]))
        let fixed = try await run(box, updated, ["gpu", "cudacount"])
        expectSuccess(fixed)
        #expect(fixed.stdout.hasPrefix("cuda devices: 2\n"), "\(fixed)")
    }

    @Test("after run --nvidia, setup --nvidia needs no --force; setup --purge removes the mount points")
    func runLeavesNoInstallation() async throws {
        let box = try sandbox()
        let tree = try Self.driverTree(box, "good")
        let id = try await Self.container(box, tree: tree)
        let root = box.containerRoot(id)
        let before = Set(box.walk(root))
        expectSuccess(try await run(box, tree, ["--nvidia", "gpu", "true"]))
        let icd = root + "/etc/OpenCL/vendors/nvidia.icd"
        #expect(box.exists(icd) && box.readFile(icd) == "", "the run's mount point for the ICD")
        #expect(box.exists(root + "/usr/local/nvidia") && box.exists(root + "/lib/firmware/nvidia/\(Self.version)"))
        expectSuccess(try await box.udocker(["setup", "--purge", "gpu"]))
        #expect(Set(box.walk(root)) == before, "left in ROOT: \(Set(box.walk(root)).subtracting(before).sorted())")

        expectSuccess(try await run(box, tree, ["--nvidia", "gpu", "true"]))
        try requireSuccess(try await box.udocker(["setup", "--nvidia", "gpu"], environment: ["UDOCKER_NVIDIA_ROOT": tree]))
        #expect(box.readFile(icd) == "libnvidia-opencl.so.1\n", "setup --nvidia replaced the empty mount point")
        // The copy is not a mount point: --purge keeps it.
        expectSuccess(try await box.udocker(["setup", "--purge", "gpu"]))
        #expect(box.readFile(icd) == "libnvidia-opencl.so.1\n")
        expectOneLineError(
            try await box.udocker(["setup", "--nvidia", "gpu"], environment: ["UDOCKER_NVIDIA_ROOT": tree]),
            mentioning: ["already exists", "--force"])
    }

    @Test("F3: --gpus and NVIDIA_VISIBLE_DEVICES select through CUDA_VISIBLE_DEVICES in PCI bus order, with the warning")
    func fakechrootSelectsForCUDA() async throws {
        let box = try sandbox()
        let tree = try Self.driverTree(box, "good")
        _ = try await Self.container(box, tree: tree)
        try requireSuccess(try await box.udocker(["setup", "--execmode=F3", "gpu"]))
        let show = ["gpu", "sh", "-c", "echo \"${CUDA_VISIBLE_DEVICES-unset} ${CUDA_DEVICE_ORDER-unset}\""]
        let one = try await run(box, tree, ["--gpus=1"] + show)
        expectSuccess(one)
        #expect(one.stdout == "1 PCI_BUS_ID\n", "\(one)")
        #expect(one.stderr.contains("sees the host /dev as it is") && one.stderr.contains("CUDA_VISIBLE_DEVICES=1"), "\(one)")
        let all = try await run(box, tree, ["--nvidia"] + show)
        expectSuccess(all)
        #expect(all.stdout == "unset unset\n" && all.stderr.contains("GPUs cannot be selected"), "\(all)")
        // A container given the driver by setup --nvidia: the same selection, no flag needed.
        try requireSuccess(try await box.udocker(["setup", "--nvidia", "gpu"], environment: ["UDOCKER_NVIDIA_ROOT": tree]))
        let copied = try await run(box, tree, ["-e", "NVIDIA_VISIBLE_DEVICES=GPU-00000000-0000-0000-0000-000000000000"] + show)
        expectSuccess(copied)
        #expect(copied.stdout == "0 PCI_BUS_ID\n", "\(copied)")
        let plain = try await run(box, tree, show)
        #expect(plain.stdout == "unset unset\n" && !plain.stderr.contains("/dev"), "\(plain)")
    }

    @Test("driver files you own are bound read-only (N1, R1); PRoot says it cannot", arguments: ["N1", "R1", "P1"])
    func driverBindsAreReadOnly(_ mode: String) async throws {
        let box = try sandbox("nvidia-ro-\(mode)")
        let tree = try Self.driverTree(box, "mine")
        // A driver tree owned by the user (a site's driver in project space, UDOCKER_NVIDIA_ROOT).
        let chown = Process()
        chown.executableURL = URL(fileURLWithPath: "/bin/chown")
        chown.arguments = ["-R", "\(box.env.user):", tree]
        try chown.run()
        chown.waitUntilExit()
        try #require(chown.terminationStatus == 0)
        _ = try await Self.container(box, tree: tree)
        if mode != "N1" { try requireSuccess(try await box.udocker(["setup", "--execmode=\(mode)", "gpu"])) }
        let lib = "\(tree)/usr/lib/x86_64-linux-gnu/libcuda.so.\(Self.version)"
        let hashes = [lib, "\(tree)/usr/bin/nvidia-smi", "\(tree)/etc/OpenCL/vendors/nvidia.icd"].map { box.sha256($0) }
        let script = """
            for f in /usr/local/nvidia/lib64/libcuda.so.1 /usr/local/nvidia/bin/nvidia-smi /etc/OpenCL/vendors/nvidia.icd; do
              (echo planted >> $f) 2>/dev/null && echo "wrote $f"
            done
            (echo planted > /lib/firmware/nvidia/\(Self.version)/planted) 2>/dev/null && echo "wrote firmware"
            cudacount
            """
        let r = try await run(box, tree, ["--nvidia", "gpu", "sh", "-c", script])
        expectSuccess(r)
        #expect(r.stdout.hasSuffix("cuda devices: 2\ncuda driver: 12060\n"), "\(r)")
        if mode == "P1" {
            #expect(r.stderr.contains("P1 cannot bind the driver files read-only"), "\(r)")
        } else {
            #expect(!r.stdout.contains("wrote"), "a driver file was written from the container: \(r)")
            #expect([lib, "\(tree)/usr/bin/nvidia-smi", "\(tree)/etc/OpenCL/vendors/nvidia.icd"].map { box.sha256($0) } == hashes)
            #expect(!box.exists("\(tree)/lib/firmware/nvidia/\(Self.version)/planted"))
            #expect(!r.stderr.contains("read-only"), "\(r)")
        }
    }

    @Test("CUDA_VISIBLE_DEVICES from the job environment reaches the container")
    func passthrough() async throws {
        let box = try sandbox()
        let tree = try Self.driverTree(box, "good")
        _ = try await Self.container(box, tree: tree)
        let r = try await run(box, tree, ["--nvidia", "gpu", "cudacount"], env: ["CUDA_VISIBLE_DEVICES": "0"])
        expectSuccess(r)
        #expect(r.stdout.hasPrefix("cuda devices: 1\n"), "\(r)")
    }
}
