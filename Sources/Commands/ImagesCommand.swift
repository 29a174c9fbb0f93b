import ArgumentParser
import Store

struct ImagesCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "images", abstract: "List container images",
        discussion: "images [-l] [-p]")
    @Flag(name: .customShort("l"), help: "long format: tag directory and layers with sizes") var long = false
    @Flag(name: .customShort("p"), help: "print the platform") var platform = false
    @Flag(name: .customLong("no-trunc"), help: .hidden) var noTrunc = false
    @Flag(name: .customLong("all"), help: .hidden) var all = false

    func execute(_ context: CommandContext) async throws -> Int32 {
        let repo = context.repository
        if context.configuration.verbosity >= 3 { print("REPOSITORY") }
        for listing in repo.listImages() {
            let mark = listing.protected ? "P" : "."
            if platform {
                let p =
                    (try? repo.imageContents(listing.image)).flatMap { ImagePlatform.describe(configBytes: $0.configBytes) } ?? "unknown"
                print("\(p.padding(18)) \(mark) \(listing.image)")
            } else {
                print("\(listing.image)    \(mark)")
            }
            if long {
                print(" \(listing.directory)")
                for (path, size) in repo.imageLayerLinks(listing.image) {
                    var mb = size / (1024 * 1024)
                    if mb == 0 && size > 0 { mb = 1 }
                    print("    \(path.dropFirst(listing.directory.count)) (\(mb) MB)")
                }
            }
        }
        return 0
    }
}

extension String {
    /// `%-N.Ns`: left-justified, cut at N.
    func padding(_ n: Int) -> String {
        let cut = String(prefix(n))
        return cut + String(repeating: " ", count: max(0, n - cut.count))
    }
}
