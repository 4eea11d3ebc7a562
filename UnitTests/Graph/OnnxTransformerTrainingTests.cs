using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MLNetQuant.Configuration;
using MLNetQuant.Training;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Graph;

/// <summary>Fine-tuning an ONNX transformer that reads int64 token ids and a mask: each graph input is fed from the
/// column of its name, every algorithm takes it, and the saved model keeps both inputs.</summary>
[TestClass]
public sealed class OnnxTransformerTrainingTests
{
    private const int Tokens = 16;

    public TestContext TestContext { get; set; } = null!;

    public sealed class LabeledTokens
    {
        [VectorType(Tokens)]
        public long[] input_ids { get; set; } = Array.Empty<long>();

        [VectorType(Tokens)]
        public long[] attention_mask { get; set; } = Array.Empty<long>();

        public uint Label { get; set; }
    }

    public sealed class Scores
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    // A task a text classifier can learn: is token 7 in the text? Half the rows get it at a random real position.
    private static LabeledTokens[] Rows(int count, int seed)
    {
        var random = new Random(seed);
        return ZooModels.Tokens(count, seed).Select((row, i) =>
        {
            var present = i % 2 == 0;
            var ids = row.input_ids.Select(id => id == 7 ? 8L : id).ToArray();
            if (present) ids[random.Next(1, (int)row.attention_mask.Sum())] = 7;
            return new LabeledTokens { input_ids = ids, attention_mask = row.attention_mask, Label = present ? 1u : 0u };
        }).ToArray();
    }

    [TestMethod]
    public void SixAlgorithms_TakeATransformer_FedFromTwoInt64Columns_AndTheZipKeepsBothInputs()
    {
        var ml = new MLContext(seed: 1);
        var path = ZooModels.Path("tiny_bert_op13.onnx");
        var train = ml.Data.LoadFromEnumerable(Rows(128, 3));
        var test = ml.Data.LoadFromEnumerable(Rows(32, 4));
        var estimators = new (string Name, IEstimator<QuantizedModelTransformer> Estimator)[]
        {
            ("QAT", ml.Quantization().Qat(new QatOptions { OnnxModelPath = path, Epochs = 1, BatchSize = 32, LearningRate = 0.0005 })),
            ("LSQ", ml.Quantization().Lsq(new LsqOptions { OnnxModelPath = path, Epochs = 1, BatchSize = 32, LearningRate = 0.0005 })),
            ("DoReFa", ml.Quantization().DoReFa(new DoReFaOptions { OnnxModelPath = path, Epochs = 1, BatchSize = 32, LearningRate = 0.0005 })),
            ("BNN", ml.Quantization().Bnn(new BnnOptions { OnnxModelPath = path, Epochs = 1, BatchSize = 32, LearningRate = 0.0005 })),
            ("Observer", ml.Quantization().Observer(new ObserverOptions { OnnxModelPath = path, CalibrationRows = 128 })),
            ("Naive", ml.Quantization().Naive(new NaiveOptions { OnnxModelPath = path, InputShapes = { ["input_ids"] = new long[] { Tokens }, ["attention_mask"] = new long[] { Tokens } } })),
        };
        var zip = Path.Combine(Path.GetTempPath(), $"mlnetquant-tinybert-{Guid.NewGuid():N}.zip");
        try
        {
            foreach (var (name, estimator) in estimators)
            {
                using var model = estimator.Fit(train);
                var scores = model.Transform(test).GetColumn<float[]>("Score").ToArray();
                Assert.IsTrue(scores.All(s => s.Length == 3 && s.All(float.IsFinite) && Math.Abs(s.Sum() - 1) < 1e-4), $"{name}: tiny_bert's three class probabilities per row");
                var matMuls = model.Report.Tensors.Where(t => t.Tensor == QuantType.Weight).Select(t => t.Layer).Distinct().Count();
                TestContext.WriteLine($"{name}: {matMuls} weighted nodes quantized; first row {string.Join(", ", scores[0].Select(v => v.ToString("F3")))}");
                Assert.IsGreaterThanOrEqualTo(8, matMuls, $"{name}: the projections, feed-forward layers and classifier are quantized");

                ml.Model.Save(model, train.Schema, zip);
                var loaded = new MLContext().Model.Load(zip, out var schema);
                var inputs = schema.Select(c => c.Name).ToArray();
                CollectionAssert.IsSubsetOf(new[] { "input_ids", "attention_mask" }, inputs, $"{name}: the saved pipeline reads both token columns");
                var reloaded = loaded.Transform(test).GetColumn<float[]>("Score").ToArray();
                for (var r = 0; r < scores.Length; r++) CollectionAssert.AreEqual(scores[r], reloaded[r], $"{name}: row {r} after reload");
            }
        }
        finally
        {
            File.Delete(zip);
        }
    }

    [TestMethod]
    public void QatOfATransformer_Learns_AndOnnxRuntimeComputesWhatTheTrainedNetworkComputes()
    {
        var ml = new MLContext(seed: 1);
        var rows = Rows(512, 5);
        var train = ml.Data.LoadFromEnumerable(rows);
        var test = ml.Data.LoadFromEnumerable(Rows(128, 6));
        var options = new QatOptions
        {
            OnnxModelPath = ZooModels.Path("tiny_bert_op13.onnx"), Epochs = 4, BatchSize = 32, LearningRate = 0.001,
            Optimizer = QuantOptimizer.Adam, Device = QuantDevice.Cpu,
        };
        var run = QuantizationRunner.Run(ml, options, train);
        var accuracy = QuantizationRunner.Evaluate(ml, run, test, options).Accuracy;
        TestContext.WriteLine($"epoch losses {string.Join(", ", run.History.Select(h => h.TrainLoss.ToString("F3")))}; held-out accuracy {accuracy:P1}");
        Assert.IsLessThan(run.History[0].TrainLoss, run.History[^1].TrainLoss, "the loss falls: gradients reach the weights through the int64-fed graph");
        Assert.IsGreaterThan(0.8, accuracy, "it learns to spot token 7 (chance is 50 %)");

        var exported = MLNetQuant.Export.QdqExporter.Export(run.Network, run.Inputs, run.Outputs, true, "Score");
        var held = rows.Take(4).ToArray();
        var ids = held.SelectMany(r => r.input_ids).ToArray();
        var mask = held.SelectMany(r => r.attention_mask).ToArray();
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, new long[] { 4, Tokens });
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, new long[] { 4, Tokens });
        var viaOrt = ZooModels.Run(exported.OnnxBytes, new[] { ("input_ids", idsValue), ("attention_mask", maskValue) }, "Score");
        run.Network.eval();
        float[] viaTorch;
        using (no_grad())
        using (var idsTensor = tensor(ids, new long[] { 4, Tokens }))
        using (var maskTensor = tensor(mask, new long[] { 4, Tokens }))
        using (var logits = run.Network.Forward(new[] { idsTensor, maskTensor }))
        using (var probabilities = logits.softmax(1))
            viaTorch = probabilities.data<float>().ToArray();
        var worst = viaOrt.Zip(viaTorch).Max(p => Math.Abs(p.First - p.Second));
        TestContext.WriteLine($"largest probability difference ORT vs TorchSharp: {worst:E2}");
        Assert.IsLessThan(0.02, worst, "the QDQ model computes what the trained network computes (int8 rounding apart)");
        run.Network.Dispose();
    }

    public sealed class RenamedTokens
    {
        [VectorType(Tokens)]
        public long[] ids { get; set; } = Array.Empty<long>();

        [VectorType(Tokens)]
        public int[] attention_mask { get; set; } = Array.Empty<int>();

        public uint Label { get; set; }
    }

    [TestMethod]
    public void TokenColumns_AreMappedByName_AndMissingOrMistypedOnesAreNamed()
    {
        var ml = new MLContext(seed: 1);
        var path = ZooModels.Path("tiny_bert_op13.onnx");
        var rows = Rows(16, 7);
        var renamed = ml.Data.LoadFromEnumerable(rows.Select(r => new RenamedTokens
        {
            ids = r.input_ids, attention_mask = r.attention_mask.Select(m => (int)m).ToArray(), Label = r.Label,
        }));
        var unmapped = ml.Quantization().Qat(new QatOptions { OnnxModelPath = path, Epochs = 1 });
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => unmapped.Fit(renamed)).Message, "no column 'input_ids'");
        var mapped = new QatOptions { OnnxModelPath = path, Epochs = 1, InputColumns = { ["input_ids"] = "ids" } };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.Quantization().Qat(mapped).Fit(renamed)).Message,
            "Column 'attention_mask' holds Int32; the model input 'attention_mask' takes Int64");
        var naive = ml.Quantization().Naive(new NaiveOptions { OnnxModelPath = path });
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => naive.Fit(renamed)).Message, "InputShapes['input_ids']");

        // Mapped and of the right types: the saved model's first input is named after its column.
        var tokens = ml.Data.LoadFromEnumerable(rows);
        var renamedIds = ml.Transforms.CopyColumns("ids", "input_ids").Fit(tokens).Transform(tokens);
        using var model = ml.Quantization().Observer(new ObserverOptions { OnnxModelPath = path, InputColumns = { ["input_ids"] = "ids" } }).Fit(renamedIds);
        var inputs = global::Onnx.ModelProto.Parser.ParseFrom(model.GetOnnxBytes()).Graph.Input.Select(i => i.Name).ToArray();
        CollectionAssert.AreEqual(new[] { "ids", "attention_mask" }, inputs);
        Assert.HasCount(16, model.Transform(renamedIds).GetColumn<float[]>("Score").ToArray());
    }
}
