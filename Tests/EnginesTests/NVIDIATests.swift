import Foundation
import UDockerSystem
import Testing
import TestSupport
@testable import Engines
#if canImport(Glibc)
import Glibc
#endif

/// The fake driver trees of `scripts/fixtures/nvidia-driver-tree.sh` (device nodes need root).
enum FakeDriver {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/fixtures/nvidia-driver-tree.sh").path
    static var canBuild: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/gcc") }
    static let version = "560.35.03"

    /// Builds a tree in a fresh directory: `<dir>/root`.
    static func build(_ args: String = "") throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory(prefix: "udocker-nvidia")
        let (status, out) = shell("bash '\(script)' '\(dir.path)/root' \(version) \(args) 2>&1")
        try #require(status == 0, "fixture script failed: \(out)")
        return dir
    }
}

@Suite struct LDCacheTests {
    @Test(
        .enabled(
            if: FileManager.default.fileExists(atPath: "/etc/ld.so.cache")
                && FileManager.default.isExecutableFile(atPath: "/sbin/ldconfig"),
            "needs the host's ld.so.cache and ldconfig"))
    func hostCacheMatchesLdconfig() throws {
        let cache = try LDCache.load(root: "/")
        let (status, out) = shell("/sbin/ldconfig -p")
        try #require(status == 0)
        let expected = out.split(separator: "\n").dropFirst().filter { $0.contains("x86-64") }.compactMap { line -> String? in
            let parts = line.trimmingCharacters(in: .whitespaces).components(separatedBy: " => ")
            guard parts.count == 2, let name = parts[0].split(separator: " ").first else { return nil }
            return "\(name)=\(parts[1])"
        }
        let ours = cache.native.map { "\($0.name)=\($0.path)" }
        #expect(!ours.isEmpty)
        #expect(ours == expected)
    }

    @Test func rejectsGarbageAndTruncation() {
        #expect(throws: LDCache.ParseError.notACache) { try LDCache(bytes: Array("not a cache at all, really not".utf8)) }
        var header = Array("glibc-ld.so.cache1.1".utf8) + [UInt8](repeating: 0, count: 28)
        header[20] = 0xff; header[21] = 0xff  // 65535 entries announced, none present
        #expect(throws: LDCache.ParseError.truncated) { try LDCache(bytes: header) }
    }

    @Test func entryOffsetsOutsideTheFileAreSkipped() throws {
        var b = Array("glibc-ld.so.cache1.1".utf8) + [UInt8](repeating: 0, count: 28)
        b[20] = 2  // two entries
        func entry(_ flags: UInt32, _ key: UInt32, _ value: UInt32) -> [UInt8] {
            var e = [UInt8](repeating: 0, count: 24)
            for i in 0..<4 {
                e[i] = UInt8(truncatingIfNeeded: flags >> (8 * i)); e[4 + i] = UInt8(truncatingIfNeeded: key >> (8 * i))
                e[8 + i] = UInt8(truncatingIfNeeded: value >> (8 * i))
            }
            return e
        }
        let strings = 48 + 48
        b += entry(0x0303, UInt32(strings), UInt32(strings + 10)) + entry(0x0303, 0xffff_fff0, 5)
        b += Array("libx.so.1\0/lib/libx.so.1\0".utf8)
        let cache = try LDCache(bytes: b)
        #expect(cache.entries == [.init(name: "libx.so.1", path: "/lib/libx.so.1", flags: 0x0303)])
    }
}

extension LDCacheTests {
    /// A new-format cache of `size` bytes whose `count` entries take their key and value
    /// offsets from `offsets`, the string area filled with `fill`.
    static func cache(size: Int, count: Int, fill: UInt8, offsets: (Int, Int) -> (UInt32, UInt32)) -> [UInt8] {
        var b = [UInt8](repeating: fill, count: size)
        b.replaceSubrange(0..<20, with: Array("glibc-ld.so.cache1.1".utf8))
        for i in 20..<48 { b[i] = 0 }
        func put(_ v: UInt32, at o: Int) { for k in 0..<4 { b[o + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) } }
        put(UInt32(count), at: 20)
        let table = 48 + count * 24
        for i in 0..<count {
            let (key, value) = offsets(i, table)
            put(0x0303, at: 48 + i * 24); put(key, at: 48 + i * 24 + 4); put(value, at: 48 + i * 24 + 8)
            for k in 12..<24 { b[48 + i * 24 + k] = 0 }
        }
        return b
    }

    /// N6 (security review 2026-12): entries pointing at distinct offsets of one long run without
    /// NUL made the parse O(size²) (a 512 KiB cache from an image: 202 s). Just under the size
    /// cap, such a cache is now refused after a bounded scan.
    @Test func hostileCacheIsRefusedInLinearTime() throws {
        let size = LDCache.maxSize - 4096
        let count = size / 4 / 24
        let b = Self.cache(size: size, count: count, fill: UInt8(ascii: "A")) { i, table in
            (UInt32(table + i), UInt32(table + i + 1))
        }
        #expect(throws: LDCache.ParseError.malformed) { try LDCache(bytes: b) }
        // Every entry at the same offset: read once, skipped, no error.
        let same = Self.cache(size: size, count: count, fill: UInt8(ascii: "A")) { _, table in (UInt32(table), UInt32(table)) }
        #expect(try LDCache(bytes: same).entries.isEmpty)
    }

    /// The size cap: a cache over `maxSize` is refused, from bytes and from a file (not read).
    @Test func cachesOverTheCapAreRefused() throws {
        let over = Self.cache(size: LDCache.maxSize + 1, count: 1, fill: 0) { _, table in (UInt32(table), UInt32(table)) }
        #expect(throws: LDCache.ParseError.tooLarge) { try LDCache(bytes: over) }
        let dir = try TemporaryDirectory(prefix: "udocker-ldcache")
        try FileManager.default.createDirectory(atPath: dir.path + "/etc", withIntermediateDirectories: true)
        let fd = open(dir.path + "/etc/ld.so.cache", O_WRONLY | O_CREAT, 0o644)
        try #require(fd >= 0)
        _ = over.withUnsafeBytes { write(fd, $0.baseAddress!, 48) }
        ftruncate(fd, off_t(1) << 32)  // sparse 4 GiB
        close(fd)
        #expect(throws: LDCache.ParseError.tooLarge) { try LDCache.load(root: dir.path) }
    }

    /// Strings lie in the string table: an offset into the header or the entries is skipped,
    /// as is a string without NUL within PATH_MAX bytes.
    @Test func stringsAreBoundedByTheStringTable() throws {
        var b = Self.cache(size: 48 + 3 * 24, count: 3, fill: 0) { i, table in
            [(UInt32(0), UInt32(table + 10)), (UInt32(table), UInt32(table + 10)), (UInt32(table), UInt32(table + 25))][i]
        }
        b += Array("libx.so.1\0/lib/libx.so.1\0".utf8) + [UInt8](repeating: UInt8(ascii: "/"), count: 5000) + [0]
        let cache = try LDCache(bytes: b)
        #expect(cache.entries == [.init(name: "libx.so.1", path: "/lib/libx.so.1", flags: 0x0303)])
    }
}

@Suite struct NVIDIASelectionTests {
    let uuids = ["GPU-aaaa": 1]

    @Test func enrootValues() throws {
        #expect(try NVIDIASelection.devices(gpus: nil, visible: nil, available: [0, 1], uuids: uuids) == [0, 1])
        #expect(try NVIDIASelection.devices(gpus: nil, visible: "void", available: [0, 1], uuids: uuids) == nil)
        #expect(try NVIDIASelection.devices(gpus: nil, visible: "none", available: [0, 1], uuids: uuids) == [])
        #expect(try NVIDIASelection.devices(gpus: nil, visible: "1", available: [0, 1], uuids: uuids) == [1])
        #expect(try NVIDIASelection.devices(gpus: nil, visible: "GPU-aaaa,0", available: [0, 1], uuids: uuids) == [1, 0])
        #expect(try NVIDIASelection.devices(gpus: "device=0", visible: "1", available: [0, 1], uuids: uuids) == [0])
        #expect(try NVIDIASelection.devices(gpus: "all", visible: "none", available: [0, 1], uuids: uuids) == [0, 1])
    }

    @Test func unknownGPUsAreNamed() {
        #expect(throws: NVIDIASelection.Failure(description: "--gpus: no GPU 7 on this host (GPUs: 0,1)")) {
            try NVIDIASelection.devices(gpus: "7", visible: nil, available: [0, 1], uuids: [:])
        }
        #expect(throws: NVIDIASelection.Failure.self) { try NVIDIASelection.devices(gpus: nil, visible: "x;y", available: [0], uuids: [:]) }
    }
}

@Suite struct NVIDIAFileListTests {
    @Test func defaultListAndUserLines() throws {
        let list = NVIDIAFileList.builtIn
        for lib in [
            "libcuda.so", "libnvidia-ml.so", "libnvidia-ptxjitcompiler.so", "libnvidia-nvvm.so", "libnvidia-gpucomp.so",
            "libcudadebugger.so", "libnvidia-allocator.so", "libnvidia-cfg.so", "libnvidia-opencl.so", "libnvidia-pkcs11.so",
        ] {
            #expect(list.items.contains { $0.kind == .lib && $0.name == lib }, "\(lib) missing")
        }
        let user = try NVIDIAFileList(text: "compute lib libnvidia-foo.so  # site addition\n\nvideo file /etc/x.json\n")
        #expect(
            user.items == [
                .init(capability: "compute", kind: .lib, name: "libnvidia-foo.so"),
                .init(capability: "video", kind: .file, name: "/etc/x.json"),
            ])
        #expect(throws: NVIDIAFileList.ParseError.self) { try NVIDIAFileList(text: "compute lib ../x") }
        #expect(throws: NVIDIAFileList.ParseError.self) { try NVIDIAFileList(text: "gaming lib libx.so") }
        #expect(throws: NVIDIAFileList.ParseError.self) { try NVIDIAFileList(text: "compute file relative/x") }
        #expect(try NVIDIAFileList.capabilities(from: nil) == ["compute", "utility"])
        #expect(try NVIDIAFileList.capabilities(from: "all") == NVIDIAFileList.capabilities)
        #expect(try NVIDIAFileList.capabilities(from: "video") == ["video"])
        #expect(throws: NVIDIAFileList.ParseError.self) { try NVIDIAFileList.capabilities(from: "compute,bogus") }
    }

    @Test func driverCUDATable() {
        #expect(NVIDIAPreflight.driverCUDA("550.54.15")! == (12, 4))
        #expect(NVIDIAPreflight.driverCUDA("552.1")! == (12, 4))
        #expect(NVIDIAPreflight.driverCUDA("470.256.02")! == (11, 4))
        #expect(NVIDIAPreflight.driverCUDA("300.1") == nil)
        #expect(NVIDIAPreflight.imageCUDA(["CUDA_VERSION": "12.6.3"])! == (12, 6))
        #expect(NVIDIAPreflight.imageCUDA(["NVIDIA_REQUIRE_CUDA": "cuda>=13.0 brand=tesla,driver>=535"])! == (13, 0))
    }
}

@Suite(.enabled(if: FakeDriver.canBuild, "building the fake driver tree needs root (mknod) and gcc"))
struct NVIDIADriverTests {
    @Test func selectsOnlyTheRunningDriversFiles() throws {
        let dir = try FakeDriver.build()
        let driver = NVIDIADriver(root: dir.path + "/root")
        #expect(driver.kernelModuleVersion() == FakeDriver.version)
        let r = NVIDIAPreflight.run(
            driver: driver, container: nil, imageEnvironment: [:], userEnvironment: [:],
            capabilities: NVIDIAFileList.defaultCapabilities, list: .builtIn)
        #expect(r.findings.filter { $0.level == .error }.isEmpty, "\(r.findings)")
        let names = Set(r.libraries.map(\.name))
        #expect(
            names
                == Set(
                    [
                        "libcuda", "libnvidia-ml", "libnvidia-cfg", "libnvidia-ptxjitcompiler", "libnvidia-nvvm", "libnvidia-opencl",
                        "libnvidia-allocator", "libcudadebugger", "libnvidia-gpucomp",
                    ].map { "\($0).so.\(FakeDriver.version)" }))
        #expect(r.libraries.first { $0.name.hasPrefix("libcuda.") }?.links.contains("libcuda.so.1") == true)
        #expect(!r.libraries.contains { $0.host.contains("535.104.05") || $0.host.contains("unrelated") })
        #expect(driver.gpus().map(\.index) == [0, 1])
        #expect(driver.gpus().map(\.device.major) == [195, 195])
        #expect(driver.device("nvidiactl").map { [$0.major, $0.minor] } == [195, 255])
        #expect(driver.binaries(capabilities: ["utility"], list: .builtIn).map(\.name) == ["nvidia-smi"])
        #expect(driver.firmware(version: FakeDriver.version)?.container == "/lib/firmware/nvidia/\(FakeDriver.version)")
        #expect(driver.gpuUUIDs()["GPU-00000000-0000-0000-0000-000000000001"] == 1)
        #expect(driver.pciOrder() == [0, 1])
        let doctor = NVIDIAPreflight.check(hostRoot: dir.path + "/root")
        #expect(doctor.first?.message == "NVIDIA driver \(FakeDriver.version) (CUDA 12.6), 9 libraries; GPUs: nvidia0 nvidia1")
    }

    @Test func noDriverAndVersionMismatchAreOneLine() throws {
        let empty = try TemporaryDirectory(prefix: "udocker-nvidia")
        let none = NVIDIAPreflight.check(hostRoot: empty.path)
        #expect(none.count == 1 && none[0].level == .error && none[0].message.hasPrefix("no NVIDIA driver"))
        let dir = try FakeDriver.build("--kmod=565.57.01")
        let mismatch = NVIDIAPreflight.check(hostRoot: dir.path + "/root")
        #expect(
            mismatch == [
                .init(
                    level: .error,
                    message: "driver/library version mismatch: libcuda.so.1 is \(FakeDriver.version) "
                        + "(\(dir.path)/root/usr/lib/x86_64-linux-gnu/libcuda.so.\(FakeDriver.version)), the kernel module is 565.57.01")
            ])
    }

    @Test func glibcAndCUDAChecksAgainstTheContainer() throws {
        let container = try BusyboxContainer()
        let libdir = container.root + "/lib/x86_64-linux-gnu"
        try FileManager.default.createDirectory(atPath: libdir, withIntermediateDirectories: true)
        let good = try FakeDriver.build()
        let driver = NVIDIADriver(root: good.path + "/root")
        func run(_ image: [String: String] = [:], user: [String: String] = [:]) -> [NVIDIAFinding] {
            NVIDIAPreflight.run(
                driver: driver, container: container.root, imageEnvironment: image, userEnvironment: user,
                capabilities: NVIDIAFileList.defaultCapabilities, list: .builtIn
            ).findings
        }
        // busybox-static: no glibc at all.
        #expect(run().first?.message.hasPrefix("the container has no glibc") == true)
        try FileManager.default.copyItem(atPath: "/lib/x86_64-linux-gnu/libc.so.6", toPath: libdir + "/libc.so.6")
        #expect(run() == [])
        #expect(
            run(["CUDA_VERSION": "12.8.0"]) == [
                .init(
                    level: .warning,
                    message:
                        "the image needs CUDA 12.8, driver \(FakeDriver.version) supports 12.6: minor-version compatibility only (PTX JIT may fail)"
                )
            ])
        #expect(run(["CUDA_VERSION": "13.0.1"]).first?.level == .error)
        #expect(run(["CUDA_VERSION": "13.0.1"], user: ["NVIDIA_DISABLE_REQUIRE": "1"]) == [])
        try FileManager.default.createDirectory(atPath: container.root + "/usr/local/cuda/compat", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: container.root + "/usr/local/cuda/compat/libcuda.so.580.1", contents: Data())
        #expect(run(["CUDA_VERSION": "13.0.1"]).first?.level == .warning)

        let newer = try FakeDriver.build("--glibc-too-new")
        let r = NVIDIAPreflight.run(
            driver: NVIDIADriver(root: newer.path + "/root"), container: container.root, imageEnvironment: [:],
            userEnvironment: [:], capabilities: NVIDIAFileList.defaultCapabilities, list: .builtIn)
        #expect(
            r.findings == [
                .init(level: .error, message: "libcuda.so.1 (\(FakeDriver.version)) needs GLIBC_2.99; the container has GLIBC_2.36")
            ])
    }
}

@Suite(.enabled(if: FakeDriver.canBuild, "building the fake driver tree needs root (mknod) and gcc"))
struct NVIDIAPlanTests {
    func container() throws -> BusyboxContainer {
        let c = try BusyboxContainer()
        let libdir = c.root + "/lib/x86_64-linux-gnu"
        try FileManager.default.createDirectory(atPath: libdir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/lib/x86_64-linux-gnu/libc.so.6", toPath: libdir + "/libc.so.6")
        return c
    }

    func plan(_ c: BusyboxContainer, tree: String, mode: ExecutionMode, gpus: String?) throws -> ExecutionPlan {
        var o = RunOptions()
        o.nvidia = true
        o.gpus = gpus
        o.command = ["true"]
        let env = c.environment(host: ["PATH": "/usr/bin:/bin", "UDOCKER_NVIDIA_ROOT": tree], sysdirs: ["/dev", "/proc"])
        return try ExecutionPlan.make(container: c.instance(), options: o, environment: env, mode: mode)
    }

    @Test func runtimeModesGetDevicesWithMajorMinor() throws {
        let dir = try FakeDriver.build()
        let c = try container()
        let p = try plan(c, tree: dir.path + "/root", mode: .R1, gpus: "1")
        defer { p.removeTemporaryFiles() }
        #expect(
            p.devices.map { "\($0.container) \($0.major):\($0.minor)" }
                == ["/dev/nvidiactl 195:255", "/dev/nvidia-uvm 511:0", "/dev/nvidia-uvm-tools 511:1", "/dev/nvidia1 195:1"])
        #expect(p.devices.allSatisfy { $0.host == dir.path + "/root" + $0.container })
        #expect(p.environmentValue("LD_LIBRARY_PATH")?.hasPrefix("/usr/local/nvidia/lib64") == true)
        #expect(p.mounts.contains { $0.target == "/usr/local/nvidia/lib64/libcuda.so.\(FakeDriver.version)" })
    }

    @Test func nativeGetsAPerRunDevWithoutUnselectedGPUs() throws {
        let dir = try FakeDriver.build()
        let c = try container()
        let p = try plan(c, tree: dir.path + "/root", mode: .N1, gpus: "0")
        #expect(p.devices.isEmpty)
        let dev = try #require(p.mounts.first { $0.target == "/dev" })
        #expect(dev.source != "/dev" && p.temporaryFiles.contains { PathName.isUnder(dev.source, $0) })
        #expect(p.mounts.contains { $0.target == "/dev/null" && $0.source == "/dev/null" })
        let nvidia = p.mounts.filter { $0.target.hasPrefix("/dev/nvidia") }.map(\.target)
        #expect(nvidia == ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia0"])
        p.removeTemporaryFiles()
        #expect(!FileManager.default.fileExists(atPath: dev.source), "the per-run directory is removed")
    }
}
