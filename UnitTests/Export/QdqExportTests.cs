using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MLNetQuant.Configuration;
using MLNetQuant.Training;
using MLNetQuant.UnitTests.Training;
using Onnx;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Export;

/// <summary>The estimators' models: QDQ ONNX that ONNX Runtime fuses, equal to the TorchSharp fake-quantized network,
/// saved and reloaded through the ML.NET .zip with the per-layer report inside.</summary>
[TestClass]
public sealed class QdqExportTests
{
    public TestContext TestContext { get; set; } = null!;

    private sealed class ScoreRow
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    private static (QuantizedModelTransformer Model, IDataView Test, MLContext Ml) FitQat()
    {
        var ml = new MLContext(seed: 5);
        var estimator = ml.Quantization().Qat(new QatOptions
        {
            ModelFactory = TestData.TinyCnn, InputShape = TestData.InputShape, Device = QuantDevice.Cpu, Epochs = 2,
            LearningRate = 0.01,
        });
        return (estimator.Fit(TestData.Quadrants(ml, 512)), TestData.Quadrants(ml, 400, seed: 77), ml);
    }

    [TestMethod]
    public void Qat_FitsTransformsAndFusesIntoIntegerKernels()
    {
        var (model, test, ml) = FitQat();
        using (model)
        {
            var scores = ml.Data.CreateEnumerable<ScoreRow>(model.Transform(test), reuseRowObject: false).ToArray();
            var labels = ml.Data.CreateEnumerable<TestData.ImageRow>(test, reuseRowObject: false).Select(r => r.Label).ToArray();
            var accuracy = scores.Zip(labels).Count(p => Scores.ArgMax(p.First.Score) == p.Second) / (double)labels.Length;
            TestContext.WriteLine($"ONNX Runtime accuracy {accuracy:P2}");
            Assert.IsGreaterThan(0.8, accuracy);
            Assert.IsTrue(scores.All(s => Math.Abs(s.Score.Sum() - 1) < 1e-4), "Score holds class probabilities");

            var optimized = Path.Combine(Path.GetTempPath(), $"mlnetquant-opt-{Guid.NewGuid():N}.onnx");
            try
            {
                using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_EXTENDED, OptimizedModelFilePath = optimized })
                using (new InferenceSession(model.GetOnnxBytes(), options)) { }
                var ops = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)).Graph.Node.Select(n => n.OpType).ToList();
                TestContext.WriteLine(string.Join(", ", ops));
                CollectionAssert.Contains(ops, "QLinearConv", "the conv runs as an integer kernel");
                Assert.IsTrue(ops.Contains("QGemm") || ops.Contains("QLinearMatMul") || ops.Contains("MatMulInteger"), "the linear layer runs as an integer kernel");
                Assert.IsFalse(ops.Contains("Conv") || ops.Contains("Gemm"), "no Q/DQ pair left unfused around a float Conv or Gemm");
            }
            finally
            {
                File.Delete(optimized);
            }
        }
    }

    [TestMethod]
    public void OnnxRuntimeOutput_MatchesTheTorchSharpNetwork()
    {
        var ml = new MLContext(seed: 6);
        var options = new QatOptions
        {
            ModelFactory = TestData.TinyCnn, InputShape = TestData.InputShape, Device = QuantDevice.Cpu, Epochs = 2, LearningRate = 0.01,
            Config =
            {
                new QuantConfig { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = 8, OpTypes = { "default" } },
            },
        };
        var run = QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 512));
        var exported = MLNetQuant.Export.QdqExporter.Export(run.Network, TestData.InputShape, run.Outputs, true, "Features", "Score");
        var rows = TestData.QuadrantRows(300, seed: 8);
        using var session = new InferenceSession(exported.OnnxBytes);
        var flat = rows.SelectMany(r => r.Features).ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(flat, new long[] { rows.Length, 64 });
        using var runOptions = new RunOptions(); // kept alive across the native call (a temporary could be finalized during it)
        using var outputs = session.Run(runOptions, new[] { "Features" }, new[] { input }, new[] { "Score" });
        var onnx = outputs[0].GetTensorDataAsSpan<float>().ToArray();

        using var x = tensor(flat, rows.Length, 1, 8, 8);
        using var torchScores = nn.functional.softmax(run.Network.call(x), 1);
        var expected = TestData.Values(torchScores);
        var maxDelta = onnx.Zip(expected).Max(p => Math.Abs(p.First - p.Second));
        var agree = Enumerable.Range(0, rows.Length).Count(i => Scores.ArgMax(onnx.AsSpan(i * 4, 4)) == Scores.ArgMax(expected.AsSpan(i * 4, 4)));
        TestContext.WriteLine($"argmax agreement {agree}/{rows.Length}, max |Δprobability| {maxDelta:G3}");
        Assert.IsGreaterThanOrEqualTo(0.995 * rows.Length, agree);
        Assert.IsLessThan(0.02, maxDelta);
    }

    [TestMethod]
    public void SavedZip_ReloadsWithIdenticalOutputs_AndCarriesTheReport()
    {
        var (model, test, ml) = FitQat();
        var path = Path.Combine(Path.GetTempPath(), $"mlnetquant-{Guid.NewGuid():N}.zip");
        try
        {
            float[][] before;
            using (model)
            {
                before = ml.Data.CreateEnumerable<ScoreRow>(model.Transform(test), false).Select(r => r.Score).ToArray();
                ml.Model.Save(model, test.Schema, path);
                Assert.AreEqual("QAT", model.Report.Algorithm);
            }
            var fresh = new MLContext();
            var loaded = fresh.Model.Load(path, out _);
            var after = fresh.Data.CreateEnumerable<ScoreRow>(loaded.Transform(test), false).Select(r => r.Score).ToArray();
            for (var i = 0; i < before.Length; i++) CollectionAssert.AreEqual(before[i], after[i], $"row {i}");

            var report = QuantizationReport.FromZip(path);
            Assert.AreEqual("QAT", report.Algorithm);
            CollectionAssert.AreEquivalent(new[] { "0", "5" }, report.Tensors.Select(t => t.Layer).Distinct().ToArray());
            Assert.IsTrue(report.Tensors.Any(t => t.Layer == "0" && t.Tensor == QuantType.Weight && t.Scales.Length == 4), "per-channel conv weight scales");
            Assert.AreEqual("QAT", QuantizationReport.FromTransformer(fresh, loaded).Algorithm);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void OutputSchema_BeforeFit_HasScore_AndNamesAMissingColumn()
    {
        var ml = new MLContext(1);
        var data = TestData.Quadrants(ml, 8);
        var estimator = ml.Quantization().Naive(TestData.SeededTinyCnn(1), TestData.InputShape);
        var shape = estimator.GetOutputSchema(SchemaShapes.Of(data.Schema));
        var score = shape.Single(c => c.Name == "Score");
        Assert.AreEqual(SchemaShape.Column.VectorKind.Vector, score.Kind);
        var renamed = ml.Quantization().Naive(TestData.SeededTinyCnn(1), TestData.InputShape, featureColumnName: "Pixels");
        var e = Assert.ThrowsExactly<ArgumentException>(() => renamed.GetOutputSchema(SchemaShapes.Of(data.Schema)));
        StringAssert.Contains(e.Message, "'Pixels'");
    }

    [TestMethod]
    public void BestExecutionProvider_OnACpuOnlyMachine_FallsBackInsteadOfThrowing()
    {
        var ml = new MLContext(seed: 1) { GpuDeviceId = 0 };
        Assert.AreEqual(OnnxInference.HasCuda() ? "CUDA" : "CPU", OnnxInference.UseBestExecutionProvider(ml));
        if (!OnnxInference.HasCuda()) Assert.IsNull(ml.GpuDeviceId, "ML.NET would otherwise try CUDA and throw (ML.NET #4656)");
        using var model = ml.Quantization().Naive(TestData.SeededTinyCnn(1), TestData.InputShape).Fit(TestData.Quadrants(ml, 8));
        var scored = ml.Data.CreateEnumerable<ScoreRow>(model.Transform(TestData.Quadrants(ml, 16)), false).ToArray();
        Assert.HasCount(16, scored);
    }

    private sealed class RegressionRow
    {
        [Microsoft.ML.Data.VectorType(64)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public float Label { get; set; }
    }

    [TestMethod]
    public void Regression_ExportsTheRawOutputAsScore()
    {
        var ml = new MLContext(seed: 4);
        var rows = TestData.QuadrantRows(256, 2).Select(r => new RegressionRow { Features = r.Features, Label = r.Features.Take(32).Average() }).ToArray();
        var data = ml.Data.LoadFromEnumerable(rows);
        using var model = ml.Quantization().Qat(new QatOptions
        {
            ModelFactory = () => nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 1)),
            InputShape = new long[] { 64 }, Device = QuantDevice.Cpu, Epochs = 3, LearningRate = 0.01,
        }).Fit(data);
        var scores = ml.Data.CreateEnumerable<ScoreRow>(model.Transform(data), false).ToArray();
        Assert.IsTrue(scores.All(s => s.Score.Length == 1), "one value per row, no softmax");
        var mse = scores.Zip(rows).Average(p => Math.Pow(p.First.Score[0] - p.Second.Label, 2));
        var variance = rows.Select(r => (double)r.Label).Average(l => Math.Pow(l - rows.Average(r => r.Label), 2));
        Assert.IsLessThan(variance, mse, "the quantized regressor explains part of the variance");
    }

    [TestMethod]
    public void Estimators_ComposeInPipelines()
    {
        var ml = new MLContext(seed: 2);
        var pipeline = ml.Transforms.NormalizeMinMax("Features")
            .Append(ml.Quantization().Qat(TestData.SeededTinyCnn(2), TestData.InputShape, epochs: 2, learningRate: 0.01));
        var model = pipeline.Fit(TestData.Quadrants(ml, 512));
        var scored = ml.Data.CreateEnumerable<ScoreRow>(model.Transform(TestData.Quadrants(ml, 64, seed: 3)), false).ToArray();
        Assert.HasCount(64, scored);
        Assert.IsTrue(scored.All(r => r.Score.Length == 4));
        model.LastTransformer.Dispose();
    }
}
