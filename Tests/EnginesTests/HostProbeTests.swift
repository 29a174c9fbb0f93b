import Testing
@testable import Engines

@Suite struct HostProbeTests {
    @Test("a tool's version is the first dotted number it prints, as doctor shows it")
    func toolVersions() {
        let cases: [(String, String?)] = [
            ("proot 5.1.0 - chroot, mount --bind, and binfmt_misc without privilege/setup", "5.1.0"),
            ("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev", "1.1.5+ds1"),
            ("fakechroot version 2.20.1", "2.20.1"),
            ("x86_64 gcc-12.2.0 build", "12.2.0"),
            ("v1x2.3-rc1 tail", "2.3-rc1"),
            ("version 7 only", nil),
            ("1. 2.", nil),
            ("", nil),
        ]
        for (text, expected) in cases {
            #expect(HostProbe.firstVersion(in: Array(text.utf8)) == expected, "\(text)")
        }
    }
}
