// swift-tools-version:6.0
// ferry: a Layer-4 TCP stream balancer for Linux. No external packages by design.
import PackageDescription

// Release builds drop dynamic exclusivity checks: the relay is single-threaded and
// those checks show up on the per-message path.
let fast: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "ferry",
    products: [.executable(name: "ferry", targets: ["ferry"])],
    targets: [
        .target(name: "CLinux", cSettings: [.define("_GNU_SOURCE")]),
        .target(name: "FerryCore", dependencies: ["CLinux"], swiftSettings: fast),
        .executableTarget(name: "ferry", dependencies: ["FerryCore"], swiftSettings: fast),
        .testTarget(name: "FerryCoreTests", dependencies: ["FerryCore", "CLinux"]),
        .testTarget(name: "FerryIntegrationTests", dependencies: ["FerryCore"]),
    ],
    swiftLanguageModes: [.v5]
)
