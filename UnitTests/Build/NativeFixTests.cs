using MLNetQuant.Build;

namespace MLNetQuant.UnitTests.Build;

/// <summary>The build's fix for TorchSharp's native library (DESIGN.md §6): the ELF patcher itself, and the state the
/// build left the test's own output in.</summary>
[TestClass]
public sealed class NativeFixTests
{
    private const string Version = "GLIBCXX_3.4.32";

    public TestContext TestContext { get; set; } = null!;

    private static string PackageCopy()
    {
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(packages))
            packages = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var path = Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.IsTrue(File.Exists(path), $"TorchSharp's original native library is expected at {path} after restore");
        return path;
    }

    [TestMethod]
    public void MakeWeak_SetsOnlyTheWeakFlagOfThatOneRequirement()
    {
        var original = PackageCopy();
        var copy = Path.Combine(Path.GetTempPath(), $"libLibTorchSharp-{Guid.NewGuid():N}.so");
        File.Copy(original, copy);
        try
        {
            var before = ElfVersionRequirement.List(copy);
            Assert.IsTrue(before.Any(r => r.Library == "libstdc++.so.6" && r.Version == Version && !r.Weak),
                "the package's library requires GLIBCXX_3.4.32 strongly");

            Assert.AreEqual(WeakenResult.Patched, ElfVersionRequirement.MakeWeak(copy, Version));

            var after = ElfVersionRequirement.List(copy);
            Assert.HasCount(before.Count, after);
            for (var i = 0; i < before.Count; i++)
            {
                Assert.AreEqual(before[i].Version, after[i].Version);
                Assert.AreEqual(before[i].Version == Version || before[i].Weak, after[i].Weak, before[i].Version);
            }
            var originalBytes = File.ReadAllBytes(original);
            var patchedBytes = File.ReadAllBytes(copy);
            Assert.HasCount(originalBytes.Length, patchedBytes);
            var changed = Enumerable.Range(0, originalBytes.Length).Count(i => originalBytes[i] != patchedBytes[i]);
            Assert.AreEqual(1, changed, "exactly one byte (the low byte of vna_flags) changes");

            Assert.AreEqual(WeakenResult.AlreadyWeak, ElfVersionRequirement.MakeWeak(copy, Version), "idempotent");
            Assert.AreEqual(WeakenResult.NotRequired, ElfVersionRequirement.MakeWeak(copy, "GLIBCXX_9.9.99"));
        }
        finally
        {
            File.Delete(copy);
        }
    }

    [TestMethod]
    public void MakeWeak_NotAnElfFile_ThrowsInvalidData()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "not an ELF file, but long enough to have a header of sixty-four bytes........");
            var e = Assert.ThrowsExactly<InvalidDataException>(() => ElfVersionRequirement.MakeWeak(path, Version));
            StringAssert.Contains(e.Message, path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void BuildOutput_IsPatchedExactlyWhenTheHostLacksTheVersion()
    {
        var output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.IsTrue(File.Exists(output), $"the build copies TorchSharp's native library to {output}");
        var host = HostLibStdCxx.Locate();
        Assert.IsNotNull(host, "libstdc++.so.6 must be found on a Linux host");
        var hostHasVersion = ElfVersionRequirement.MentionsVersion(host, Version);
        var weak = ElfVersionRequirement.List(output).Single(r => r.Version == Version).Weak;
        TestContext.WriteLine($"host libstdc++ {host}: {(hostHasVersion ? "has" : "lacks")} {Version}; output weak: {weak}");
        if (hostHasVersion)
            CollectionAssert.AreEqual(File.ReadAllBytes(PackageCopy()), File.ReadAllBytes(output),
                "a host with GLIBCXX_3.4.32 gets TorchSharp's library untouched");
        else
            Assert.IsTrue(weak, "a host without GLIBCXX_3.4.32 gets the weakened requirement");
    }

    [TestMethod]
    public void MentionsVersion_DistinguishesPrefixes()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, System.Text.Encoding.ASCII.GetBytes("\0GLIBCXX_3.4.30\0GLIBCXX_3.4.3\0"));
            Assert.IsTrue(ElfVersionRequirement.MentionsVersion(path, "GLIBCXX_3.4.30"));
            Assert.IsTrue(ElfVersionRequirement.MentionsVersion(path, "GLIBCXX_3.4.3"));
            Assert.IsFalse(ElfVersionRequirement.MentionsVersion(path, "GLIBCXX_3.4.32"));
            Assert.IsFalse(ElfVersionRequirement.MentionsVersion(path, "3.4.30"));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
