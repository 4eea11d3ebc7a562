namespace MLNetQuant.UnitTests.Samples;

/// <summary>The semantic-search sample in quick mode: a real sentence embedder quantized in an ML.NET text pipeline,
/// its .zip reloaded as production loads it.</summary>
[TestClass]
public sealed class SemanticSearchSampleTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void EmbedsSearchesAndReloads_WithSizeSpeedAndAgreementPrinted()
    {
        var output = Path.Combine(Path.GetTempPath(), $"mlnetquant-search-{Guid.NewGuid():N}");
        try
        {
            var (exitCode, text) = SampleRunner.Run("SemanticSearch", $"--sentences 60 --queries 6 --out {output}", TimeSpan.FromMinutes(5));
            TestContext.WriteLine(text);
            Assert.AreEqual(0, exitCode, text);
            StringAssert.Contains(text, "embeddings identical to the fitted pipeline's");
            var ratio = double.Parse(text.Split("MiB int8 .zip (")[1].Split('%')[0].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.IsLessThan(30, ratio, "the int8 embedder's .zip under 30 % of the float model (23 %)");
            var cosine = double.Parse(text.Split("mean embedding cosine float vs int8 ")[1].Split(' ')[0].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.IsGreaterThanOrEqualTo(0.99, cosine, "int8 embeddings within cosine 0.99 of float on average");
            var inside = double.Parse(text.Split("(tokenizer inside: ")[1].Split(", ")[1].Split(')')[0], System.Globalization.CultureInfo.InvariantCulture);
            Assert.IsGreaterThanOrEqualTo(0.99, inside, "and so with the tokenizer inside the model, unpadded");
            Assert.IsTrue(File.Exists(Path.Combine(output, "minilm-int8.zip")));
        }
        finally
        {
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        }
    }
}
