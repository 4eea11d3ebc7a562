namespace MLNetQuant.UnitTests.Samples;

/// <summary>The ResNet-18 post-training quantization sample in quick mode: report, size and speed are printed.</summary>
[TestClass]
public sealed class PretrainedOnnxPtqSampleTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void QuantizesResNet18_AndPrintsTheReportSizeAndSpeed()
    {
        var (exitCode, output) = SampleRunner.Run("PretrainedOnnxPtq", "--rows 16", TimeSpan.FromMinutes(5));
        TestContext.WriteLine(output);
        Assert.AreEqual(0, exitCode, output);
        var errorLines = output.Split('\n').SkipWhile(l => !l.StartsWith("Per-layer error", StringComparison.Ordinal)).Skip(1).TakeWhile(l => l.StartsWith("  ", StringComparison.Ordinal)).ToArray();
        Assert.HasCount(8, errorLines, "the eight worst layers");
        var ratio = double.Parse(output.Split("MiB float (")[1].Split('%')[0].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.IsLessThan(27, ratio, "int8 ResNet-18 under 27 % of the float file (25.3 %)");
        // The speed-up is printed, not asserted: timings on a shared 2-core machine are noise (2.78–3.56× seen here);
        // the target is the benchmark's (BENCHMARKS.md). The test checks that a real ratio was measured.
        var speedup = double.Parse(output.Split(" ms (")[1].Split('×')[0].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        TestContext.WriteLine($"measured int8 speed-up: {speedup}×");
        Assert.IsTrue(double.IsFinite(speedup) && speedup > 0, $"a measured speed ratio, got {speedup}");
    }
}
