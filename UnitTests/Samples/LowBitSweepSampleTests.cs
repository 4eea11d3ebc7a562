namespace MLNetQuant.UnitTests.Samples;

/// <summary>The low-bit sweep in quick mode: every algorithm at every bit width, a CSV and a PNG plot.</summary>
[TestClass]
public sealed class LowBitSweepSampleTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void WritesTheCsvAndThePlot()
    {
        var output = Directory.CreateTempSubdirectory("mlnetquant-lowbit-");
        try
        {
            var (exitCode, log) = SampleRunner.Run("LowBitSweep", $"--train 1000 --test 300 --float-epochs 1 --out \"{output.FullName}\"", TimeSpan.FromMinutes(5));
            TestContext.WriteLine(log);
            Assert.AreEqual(0, exitCode, log);
            var csv = File.ReadAllLines(Path.Combine(output.FullName, "low-bit-sweep.csv"));
            Assert.AreEqual("algorithm,bits,accuracy,float_accuracy", csv[0]);
            var rows = csv.Skip(1).Select(l => l.Split(',')).ToArray();
            Assert.HasCount(10, rows, "QAT, LSQ and DoReFa at 8, 4 and 2 bits, and BNN at 1 bit");
            CollectionAssert.AreEquivalent(new[] { "QAT", "LSQ", "DoReFa", "BNN" }, rows.Select(r => r[0]).Distinct().ToArray());
            Assert.IsTrue(rows.All(r => double.Parse(r[2], System.Globalization.CultureInfo.InvariantCulture) > 10), "every model beats chance");
            var png = File.ReadAllBytes(Path.Combine(output.FullName, "low-bit-sweep.png"));
            CollectionAssert.AreEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png.Take(4).ToArray(), "a PNG image");
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }
}
