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
        // Quick mode (2,000 rows, one epoch of NNI's SGD at 0.01 / momentum 0.5, or Adam for BNN), run after run on the
        // CPU: QAT 52.67 %, LSQ 43.00 %, Observer 47.00 %, BNN 80.67 % on 300 test rows. Floors ~8 points lower.
        foreach (var (quantizer, floor) in new[] { ("QAT_Quantizer", 45.0), ("LsqQuantizer", 35.0), ("ObserverQuantizer", 39.0), ("BNNQuantizer", 72.0) })
        {
            var line = output.Split('\n').Single(l => l.StartsWith(quantizer, StringComparison.Ordinal));
            var accuracy = double.Parse(line.Split(": ")[1].Split('%')[0].Trim(), CultureInfo.InvariantCulture);
            TestContext.WriteLine($"{quantizer}: {accuracy} % (floor {floor} %)");
            Assert.IsGreaterThan(floor, accuracy, $"{quantizer} in quick mode");
        }
        StringAssert.Contains(output, "parses to 3 sub-configs");
    }
}
