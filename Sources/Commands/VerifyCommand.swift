import ArgumentParser
import Store
import UDockerSystem

struct VerifyCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Verify a pulled image",
        discussion: """
            verify <repo/image:tag>: checks that every layer is present and matches its digest.
            verify --all [--repair]: re-hashes every blob, checks every image's manifest, config and
            layer links and every container's metadata, and reports corrupt blobs, incomplete images,
            invalid container metadata, abandoned partial downloads and staging directories, and
            unreferenced blobs. --repair removes what cannot be trusted (corrupt blobs, incomplete
            unprotected images: pull them again, leftovers); containers are only reported, never removed.
            Exit status 0 when nothing (or, with --repair, nothing left) is wrong.
            """)
    @Flag(name: .customLong("all"), help: "verify the whole repository") var all = false
    @Flag(name: .customLong("repair"), help: "with --all: remove what cannot be trusted") var repair = false
    @Argument(help: "repo/image:tag") var image: String?

    func execute(_ context: CommandContext) async throws -> Int32 {
        if all || repair {
            guard all else { throw CommandFailure("--repair needs --all") }
            guard image == nil else { throw CommandFailure("verify --all takes no image name") }
            return try verifyAll(context)
        }
        guard let image else { throw CommandFailure("must specify an image (or --all)") }
        let img = try LocalImageName(parsing: image)
        context.messages.info("verifying: \(img)")
        let problems = context.repository.verifyImage(img)
        for p in problems { context.messages.error(p) }
        if problems.isEmpty { context.messages.info("image Ok"); return 0 }
        return 1
    }

    private func verifyAll(_ context: CommandContext) throws -> Int32 {
        let r = try context.repository.verifyAll(repair: repair)
        for f in r.findings {
            if f.repaired { context.messages.warning("repaired: \(f.message)") } else { context.messages.error(f.message) }
        }
        let summary =
            "verified \(r.blobsChecked) blob(s), \(r.imagesChecked) image(s), \(r.containersChecked) container(s): "
            + "\(r.findings.count) problem(s)" + (repair ? ", \(r.findings.count - r.remaining) repaired" : "")
        context.messages.info(summary)
        return r.remaining == 0 ? 0 : 1
    }
}
