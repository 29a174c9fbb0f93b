/// `doctor`'s GPU line: the same NVIDIA pre-flight `run --nvidia` makes before exec, host side
/// only (driver beneath `UDOCKER_NVIDIA_ROOT` or `/`, versions, libraries, GPUs). A host without
/// a driver is a warning, not a failure: the engines work, only `--nvidia` would be refused.
struct NVIDIACheck: HostCheck {
    func run(_ context: HostCheckContext) -> [HostFinding] {
        let root = NVIDIADriver.hostRoot(environment: context.environment.hostEnvironment)
        let findings = NVIDIAPreflight.check(hostRoot: root)
        let details = findings.dropFirst().map(\.description)
        guard let first = findings.first else {
            return [HostFinding(check: "GPU (NVIDIA)", status: .warning, summary: "no result from the NVIDIA checks")]
        }
        switch first.level {
        case .info:
            let warned = findings.contains { $0.level == .warning }
            return [HostFinding(check: "GPU (NVIDIA)", status: warned ? .warning : .ok, summary: first.message, details: details)]
        case .warning, .error:
            let noDriver = NVIDIADriver(root: root).kernelModuleVersion() == nil
            return [
                HostFinding(
                    check: "GPU (NVIDIA)", status: noDriver ? .warning : .failed, summary: first.message,
                    details: details,
                    fix: noDriver
                        ? "none needed unless you want run --nvidia: it needs the NVIDIA kernel module and driver libraries"
                        : "reinstall the driver so that its libraries and the loaded kernel module have the same version (or reboot after an upgrade)"
                )
            ]
        }
    }
}
