import FoundationEssentials
import UDockerSystem

/// Which host driver files `--nvidia` provides, by driver capability (`NVIDIA_DRIVER_CAPABILITIES`).
/// The default list is compiled in; `$UDOCKER_DIR/nvidia-files.conf` (or the file named by
/// `UDOCKER_NVIDIA_FILES`) adds lines in the same format:
///
///     <capability> lib  <soname prefix>     e.g.  compute lib libnvidia-foo.so
///     <capability> bin  <program name>      looked up in usr/bin, usr/sbin, bin of the host root
///     <capability> file <absolute path>     bound at the same path (e.g. an ICD file)
///
/// Capabilities: compute, utility, video, graphics, display, ngx, compat32 (`all` = every one).
public struct NVIDIAFileList: Sendable, Equatable {
    public enum Kind: String, Sendable { case lib, bin, file }
    public struct Item: Sendable, Equatable {
        public var capability: String
        public var kind: Kind
        public var name: String
    }

    public var items: [Item]

    public static let capabilities: Set<String> = ["compute", "utility", "video", "graphics", "display", "ngx", "compat32"]
    /// enroot and Apptainer's default when `NVIDIA_DRIVER_CAPABILITIES` is unset.
    public static let defaultCapabilities: Set<String> = ["compute", "utility"]

    public static let defaultText = """
        # utility: management
        utility lib libnvidia-ml.so
        utility lib libnvidia-cfg.so
        utility lib libnvidia-nscq.so
        utility bin nvidia-smi
        utility bin nvidia-debugdump
        utility bin nvidia-persistenced
        # compute: CUDA and OpenCL
        compute lib libcuda.so
        compute lib libcudadebugger.so
        compute lib libnvidia-opencl.so
        compute lib libnvidia-gpucomp.so
        compute lib libnvidia-ptxjitcompiler.so
        compute lib libnvidia-fatbinaryloader.so
        compute lib libnvidia-allocator.so
        compute lib libnvidia-compiler.so
        compute lib libnvidia-pkcs11.so
        compute lib libnvidia-pkcs11-openssl3.so
        compute lib libnvidia-nvvm.so
        compute lib libnvidia-tileiras.so
        compute bin nvidia-cuda-mps-control
        compute bin nvidia-cuda-mps-server
        compute file /etc/OpenCL/vendors/nvidia.icd
        # video: encode/decode
        video lib libvdpau_nvidia.so
        video lib libnvidia-encode.so
        video lib libnvidia-opticalflow.so
        video lib libnvcuvid.so
        # graphics: OpenGL, EGL, Vulkan
        graphics lib libnvidia-eglcore.so
        graphics lib libnvidia-glcore.so
        graphics lib libnvidia-tls.so
        graphics lib libnvidia-glsi.so
        graphics lib libnvidia-fbc.so
        graphics lib libnvidia-ifr.so
        graphics lib libnvidia-rtcore.so
        graphics lib libnvoptix.so
        graphics lib libGLX_nvidia.so
        graphics lib libEGL_nvidia.so
        graphics lib libGLESv2_nvidia.so
        graphics lib libGLESv1_CM_nvidia.so
        graphics lib libnvidia-glvkspirv.so
        graphics file /etc/vulkan/icd.d/nvidia_icd.json
        graphics file /usr/share/glvnd/egl_vendor.d/10_nvidia.json
        # ngx: DLSS
        ngx lib libnvidia-ngx.so
        """

    /// The capability of `udockerSetup`'s items: not one of `capabilities`, so neither
    /// `NVIDIA_DRIVER_CAPABILITIES` nor a list file can name it; only `setup --nvidia` adds it.
    static let setupCapability = "setup"

    /// What udocker 1.3.17's `setup --nvidia` copies (its config.py `nvi_lib_list`,
    /// `nvi_etc_list`, `nvi_bin_list`): `setup --nvidia` copies these on top of the capabilities'
    /// list, so a container set up here has what it had with udocker (video encode/decode, frame
    /// capture, the TLS library, the Vulkan ICD, the driver's tools). Libraries still follow the
    /// version rule (the running driver's files only, where udocker took every match). Left out
    /// of udocker's list: `libOpenCL.` (the distribution's OpenCL ICD loader, not a driver file:
    /// the image has its own, which copying would replace) and `tls/libnvidia-tls.` (a directory
    /// of drivers before 390, which ldconfig does not index).
    public static let udockerSetup: [Item] = {
        let libs = [
            "libcuda.so", "libnvcuvid.so", "libnvidia-cfg.so", "libnvidia-compiler.so", "libnvidia-encode.so",
            "libnvidia-fatbinaryloader.so", "libnvidia-fbc.so", "libnvidia-ifr.so", "libnvidia-ml.so", "libnvidia-opencl.so",
            "libnvidia-ptxjitcompiler.so", "libnvidia-tls.so",
        ]
        let files = ["/etc/vulkan/icd.d/nvidia_icd.json", "/etc/OpenCL/vendors/nvidia.icd"]
        let programs = [
            "nvidia-bug-report.sh", "nvidia-cuda-mps-control", "nvidia-cuda-mps-server", "nvidia-debugdump", "nvidia-installer",
            "nvidia-persistenced", "nvidia-settings", "nvidia-smi", "nvidia-uninstall", "nvidia-xconfig",
        ]
        return libs.map { Item(capability: setupCapability, kind: .lib, name: $0) }
            + files.map { Item(capability: setupCapability, kind: .file, name: $0) }
            + programs.map { Item(capability: setupCapability, kind: .bin, name: $0) }
    }()

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Parses the list format; `#` starts a comment. `source` names the file in errors.
    public init(text: String, source: String = "built-in list") throws {
        var list: [Item] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if words.isEmpty { continue }
            func bad(_ why: String) -> ParseError { ParseError(description: "\(source):\(n + 1): \(why): \(raw)") }
            guard words.count == 3 else { throw bad("expected <capability> lib|bin|file <name>") }
            guard Self.capabilities.contains(words[0]) else { throw bad("unknown capability \(words[0])") }
            guard let kind = Kind(rawValue: words[1]) else { throw bad("unknown kind \(words[1])") }
            let name = words[2]
            switch kind {
            case .lib, .bin:
                guard !name.contains("/"), name != ".", name != ".." else { throw bad("a name, not a path, is expected") }
            case .file:
                guard name.hasPrefix("/"), !PathName.components(name).contains("..") else { throw bad("an absolute path is expected") }
            }
            list.append(Item(capability: words[0], kind: kind, name: name))
        }
        items = list
    }

    public static let builtIn: NVIDIAFileList = try! NVIDIAFileList(text: defaultText)

    /// The built-in list plus the user's file, if any (`UDOCKER_NVIDIA_FILES`, else
    /// `<udockerDir>/nvidia-files.conf`).
    public static func load(environment: [String: String], udockerDir: String?) throws -> NVIDIAFileList {
        var list = builtIn
        let path =
            environment["UDOCKER_NVIDIA_FILES"].flatMap { $0.isEmpty ? nil : $0 }
            ?? udockerDir.map { $0 + "/nvidia-files.conf" }
        if let path, let data = FileManager.default.contents(atPath: path) {
            list.items += try NVIDIAFileList(text: String(decoding: data, as: UTF8.self), source: path).items
        } else if let explicit = environment["UDOCKER_NVIDIA_FILES"], !explicit.isEmpty {
            throw ParseError(description: "cannot read UDOCKER_NVIDIA_FILES=\(explicit)")
        }
        return list
    }

    /// `NVIDIA_DRIVER_CAPABILITIES` (`compute,utility`, `all`); nil or empty → the default.
    public static func capabilities(from value: String?) throws -> Set<String> {
        guard let value, !value.isEmpty else { return defaultCapabilities }
        var set: Set<String> = []
        for c in value.split(separator: ",").map({ $0.trimmed(where: \.isBlank) }) where !c.isEmpty {
            if c == "all" { return capabilities }
            guard capabilities.contains(c) else {
                throw ParseError(
                    description:
                        "invalid NVIDIA_DRIVER_CAPABILITIES: \(value) (one or more of \(capabilities.sorted().joined(separator: ",")), or all)"
                )
            }
            set.insert(c)
        }
        return set
    }
}
