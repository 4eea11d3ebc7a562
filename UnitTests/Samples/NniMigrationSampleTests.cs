using System.Globalization;

namespace MLNetQuant.UnitTests.Samples;

/// <summary>The NNI migration sample in quick mode: every migrated NNI configuration trains or calibrates and learns.</summary>
[TestClass]
public sealed class NniMigrationSampleTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void EveryMigratedConfiguration_Runs()
    {
        var (exitCode, output) = SampleRunner.Run("NniMigration", "--train 2000 --test 300", TimeSpan.FromMinutes(5));
        TestContext.WriteLine(output);
        Assert.AreEqual(0, exitCode, output);
        foreach (var quantizer in new[] { "QAT_Quantizer", "LsqQuantizer", "ObserverQuantizer", "BNNQuantizer" })
        {
            var line = output.Split('\n').Single(l => l.StartsWith(quantizer, StringComparison.Ordinal));
            var accuracy = double.Parse(line.Split(": ")[1].Split('%')[0].Trim(), CultureInfo.InvariantCulture);
            Assert.IsGreaterThan(20, accuracy, $"{quantizer} learns past chance (10 %) in quick mode");
        }
        StringAssert.Contains(output, "parses to 3 sub-configs");
    }
}
