namespace MLNetQuant.UnitTests.Samples;

/// <summary>The README's first command, in quick mode: the sample trains, quantizes with the QAT estimator, saves and
/// reloads the .zip, and reports sensible numbers.</summary>
[TestClass]
public sealed class QuickStartSampleTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void QuickStart_RunsEndToEnd_SavesTheZip_AndInt8StaysCloseToFloat()
    {
        var output = Directory.CreateTempSubdirectory("mlnetquant-quickstart-");
        try
        {
            var (exitCode, log) = SampleRunner.Run("QuickStart", $"--train 3000 --test 1000 --epochs 1 --out \"{output.FullName}\"", TimeSpan.FromMinutes(5));
            TestContext.WriteLine(log);
            Assert.AreEqual(0, exitCode, log);
            double Accuracy(string row)
            {
                var line = log.Split('\n').Single(l => l.StartsWith($"| {row}", StringComparison.Ordinal));
                var cell = line.Split('|')[2].Trim().TrimEnd('%').Trim();
                return double.Parse(cell, System.Globalization.CultureInfo.InvariantCulture);
            }
            var floatAccuracy = Accuracy("float ");
            var int8 = Accuracy("int8 QAT, reloaded .zip");
            // Run after run on the CPU: float 76.00 %, int8 83.00 % (it had one more epoch, of QAT) on 1,000 test images.
            Assert.IsGreaterThan(70, floatAccuracy, "the CNN after one epoch on 3,000 images (76.00 %)");
            Assert.IsGreaterThan(floatAccuracy - 2, int8, "the reloaded int8 model keeps the accuracy");
            Assert.IsTrue(File.Exists(Path.Combine(output.FullName, "fashion-int8.zip")), "the .zip is saved");
            var summary = log.Split('\n').Single(l => l.StartsWith("int8 model: ", StringComparison.Ordinal));
            var size = double.Parse(summary.Split("int8 model: ")[1].Split('%')[0].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.IsLessThan(30, size, "int8 weights: about a quarter of the float ONNX file (25.9 %)");
            // The speed ratio is printed, not asserted: timings on a shared 2-core machine under a test run are noise
            // (1.67–1.73× seen on the default run of this net, alone on the machine); the benchmark program holds speed
            // targets. The test checks one was measured.
            var speed = double.Parse(summary.Split("size, ")[1].Split('×')[0].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            TestContext.WriteLine($"measured int8/float speed ratio: {speed}×");
            Assert.IsTrue(double.IsFinite(speed) && speed > 0, $"a measured speed ratio, got {speed}");

            // The ProductionLoader sample loads that .zip with ML.NET and ONNX Runtime only.
            var (loaderExit, loaderLog) = SampleRunner.Run("ProductionLoader",
                $"\"{Path.Combine(output.FullName, "fashion-int8.zip")}\" --rows 300", TimeSpan.FromMinutes(2));
            TestContext.WriteLine(loaderLog);
            Assert.AreEqual(0, loaderExit, loaderLog);
            StringAssert.Contains(loaderLog, "torch or mlnetquant assemblies loaded: []");
            var loaderAccuracy = double.Parse(loaderLog.Split(": ")[1].Split('%')[0].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.IsGreaterThan(int8 - 5, loaderAccuracy, "about the QuickStart's int8 accuracy on a 300-image subset");
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }

    [TestMethod]
    public void QuickStart_BadOption_PrintsUsageAndFails()
    {
        var (exitCode, output) = SampleRunner.Run("QuickStart", "--epochs zero", TimeSpan.FromMinutes(1));
        Assert.AreNotEqual(0, exitCode);
        StringAssert.Contains(output, "usage:");
    }
}
