namespace MLNetQuant.UnitTests.Samples;

/// <summary>The README's first command, in quick mode: the sample runs end to end and reports sensible accuracies.</summary>
[TestClass]
public sealed class QuickStartSampleTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void QuickStart_RunsEndToEnd_AndInt8StaysCloseToFloat()
    {
        var (exitCode, output) = SampleRunner.Run("QuickStart", "--train 3000 --test 1000 --epochs 2", TimeSpan.FromMinutes(5));
        TestContext.WriteLine(output);
        Assert.AreEqual(0, exitCode, output);
        double Accuracy(string row)
        {
            var line = output.Split('\n').Single(l => l.StartsWith($"| {row}", StringComparison.Ordinal));
            var cell = line.Split('|')[2].Trim().TrimEnd('%').Trim();
            return double.Parse(cell, System.Globalization.CultureInfo.InvariantCulture);
        }
        var floatAccuracy = Accuracy("float   ");
        var ptq = Accuracy("int8 post-training");
        var control = Accuracy("float control");
        var qat = Accuracy("int8 QAT");
        Assert.IsGreaterThan(70, floatAccuracy, "a 784-256-10 MLP learns Fashion-MNIST well past chance");
        Assert.IsGreaterThan(floatAccuracy - 2, ptq, "8-bit post-training calibration loses little");
        Assert.IsGreaterThan(control - 2, qat, "8-bit QAT tracks its float control");
    }

    [TestMethod]
    public void QuickStart_BadOption_PrintsUsageAndFails()
    {
        var (exitCode, output) = SampleRunner.Run("QuickStart", "--epochs zero", TimeSpan.FromMinutes(1));
        Assert.AreNotEqual(0, exitCode);
        StringAssert.Contains(output, "usage:");
    }
}
