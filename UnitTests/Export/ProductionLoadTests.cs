using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetQuant.Training;
using MLNetQuant.UnitTests.Samples;
using MLNetQuant.UnitTests.Training;

namespace MLNetQuant.UnitTests.Export;

/// <summary>A saved model loads and predicts in a fresh process whose only references are Microsoft.ML,
/// Microsoft.ML.OnnxTransformer and ONNX Runtime, with outputs identical to the training process's.</summary>
[TestClass]
public sealed class ProductionLoadTests
{
    private sealed class ScoreRow
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    [TestMethod]
    public void FreshProcess_WithoutTorchSharpOrMLNetQuant_PredictsIdentically()
    {
        var loaderDirectory = SampleRunner.OutputDirectory(ProductionProcess.ProjectDirectory);
        Assert.IsFalse(Directory.EnumerateFiles(loaderDirectory, "*.dll").Any(f =>
            Path.GetFileName(f).StartsWith("TorchSharp", StringComparison.Ordinal) || Path.GetFileName(f).StartsWith("MLNetQuant", StringComparison.Ordinal)),
            "the production program ships neither TorchSharp nor MLNetQuant");

        var ml = new MLContext(seed: 9);
        using var model = ml.Quantization().Qat(new QatOptions
        {
            ModelFactory = TestData.TinyCnn, InputShape = TestData.InputShape, Device = QuantDevice.Cpu, Epochs = 1,
        }).Fit(TestData.Quadrants(ml, 256));
        var rows = TestData.QuadrantRows(50, seed: 4);
        var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
        var expected = ml.Data.CreateEnumerable<ScoreRow>(scored, false).SelectMany(r => r.Score).ToArray();
        var expectedLabels = scored.GetColumn<uint>("PredictedLabel").ToArray();

        var zip = Path.Combine(Path.GetTempPath(), $"mlnetquant-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, null, zip);
            var (actual, labels, output) = ProductionProcess.Score(zip, rows.SelectMany(r => r.Features).ToArray(), 64);
            StringAssert.Contains(output, "torch or mlnetquant assemblies loaded: []", "no TorchSharp or MLNetQuant assembly was loaded");
            CollectionAssert.AreEqual(expected, actual, "identical scores in the fresh process");
            Assert.IsNotNull(labels, "the loaded classifier has a key-typed PredictedLabel");
            CollectionAssert.AreEqual(expectedLabels, labels, "identical PredictedLabel keys in the fresh process");
        }
        finally
        {
            File.Delete(zip);
        }
    }
}
