using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetQuant.Training;
using MLNetQuant.UnitTests.Training;

namespace MLNetQuant.UnitTests.Export;

/// <summary>Issue 4's classification outputs: a key-typed PredictedLabel (the arg-max, carrying the label's key
/// values) next to Score, as after any ML.NET multiclass trainer — before Fit, after Fit, after Save/Load, and with
/// ML.NET's evaluator and MapKeyToValue downstream.</summary>
[TestClass]
public sealed class PredictedLabelTests
{
    private static readonly string[] Quadrants = { "top-left", "top-right", "bottom-left", "bottom-right" };

    private sealed class NamedRow
    {
        [VectorType(64)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public string Quadrant { get; set; } = "";
    }

    private sealed class KeyRow
    {
        public string Quadrant { get; set; } = "";
    }

    private static IDataView Named(MLContext ml, int rows, int seed) => ml.Data.LoadFromEnumerable(
        TestData.QuadrantRows(rows, seed).Select(r => new NamedRow { Features = r.Features, Quadrant = Quadrants[r.Label] }));

    // Text labels mapped to keys in a fixed order, then QAT: the pipeline a Model Builder user writes.
    private static EstimatorChain<QuantizedModelTransformer> KeyLabelPipeline(MLContext ml) => ml.Transforms.Conversion
        .MapValueToKey("Label", "Quadrant", keyData: ml.Data.LoadFromEnumerable(Quadrants.Select(q => new KeyRow { Quadrant = q })))
        .Append(ml.Quantization().Qat(TestData.SeededTinyCnn(3), TestData.InputShape, epochs: 3, learningRate: 0.01));

    [TestMethod]
    public void KeyLabel_PredictedLabelIsTheArgMaxKey_WithTheLabelsValues_AndScoreIsTheOnnxScore()
    {
        var ml = new MLContext(seed: 3);
        var pipeline = KeyLabelPipeline(ml);
        var model = pipeline.Fit(Named(ml, 512, 1));
        var scored = model.Transform(Named(ml, 128, 2));

        var predicted = scored.Schema["PredictedLabel"];
        Assert.AreEqual(new KeyDataViewType(typeof(uint), 4), predicted.Type);
        var names = default(VBuffer<ReadOnlyMemory<char>>);
        predicted.GetKeyValues(ref names);
        CollectionAssert.AreEqual(Quadrants, names.DenseValues().Select(n => n.ToString()).ToArray(), "the label's key values, in key order");
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 4), scored.Schema["Score"].Type);

        // One cursor over the visible Score, the ONNX model's own (hidden) Score, the key and the label.
        var onnxScore = scored.Schema.Single(c => c.Name == "Score" && c.IsHidden);
        var columns = new[] { scored.Schema["Score"], onnxScore, predicted, scored.Schema["Label"] };
        using var cursor = scored.GetRowCursor(columns);
        var getScore = cursor.GetGetter<VBuffer<float>>(columns[0]);
        var getOnnx = cursor.GetGetter<VBuffer<float>>(columns[1]);
        var getKey = cursor.GetGetter<uint>(columns[2]);
        var getLabel = cursor.GetGetter<uint>(columns[3]);
        VBuffer<float> score = default, onnx = default;
        uint key = 0, label = 0;
        int rows = 0, correct = 0;
        var seen = new HashSet<uint>();
        while (cursor.MoveNext())
        {
            getScore(ref score);
            getOnnx(ref onnx);
            getKey(ref key);
            getLabel(ref label);
            CollectionAssert.AreEqual(onnx.DenseValues().ToArray(), score.DenseValues().ToArray(), $"row {rows}: Score is the ONNX model's, bit for bit");
            Assert.AreEqual((uint)Scores.ArgMax(score.DenseValues().ToArray()) + 1, key, $"row {rows}: PredictedLabel is the arg-max key");
            seen.Add(key);
            if (key == label) correct++;
            rows++;
        }
        Assert.AreEqual(128, rows);
        Assert.IsGreaterThan(1, seen.Count, "a trained model predicts more than one class");

        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Assert.AreEqual(correct / 128.0, metrics.MicroAccuracy, 1e-12, "ML.NET's evaluator reads Score, Label and PredictedLabel");
        Assert.IsGreaterThan(0.6, metrics.MicroAccuracy, "a useful model");

        var classes = ml.Transforms.Conversion.MapKeyToValue("PredictedQuadrant", "PredictedLabel").Fit(scored).Transform(scored)
            .GetColumn<string>("PredictedQuadrant").ToArray();
        var keys = scored.GetColumn<uint>("PredictedLabel").ToArray();
        CollectionAssert.AreEqual(keys.Select(k => Quadrants[k - 1]).ToArray(), classes, "MapKeyToValue gives the class names back");
        model.LastTransformer.Dispose();
    }

    [TestMethod]
    public void UInt32Label_PredictedLabelValuesAreTheClassIndices()
    {
        var ml = new MLContext(seed: 4);
        using var model = ml.Quantization().Qat(TestData.SeededTinyCnn(4), TestData.InputShape, epochs: 2, learningRate: 0.01).Fit(TestData.Quadrants(ml, 256));
        var scored = model.Transform(TestData.Quadrants(ml, 64, seed: 5));
        var values = ml.Transforms.Conversion.MapKeyToValue("PredictedIndex", "PredictedLabel").Fit(scored).Transform(scored);
        var indices = values.GetColumn<uint>("PredictedIndex").ToArray();
        var argMax = values.GetColumn<float[]>("Score").Select(s => (uint)Scores.ArgMax(s)).ToArray();
        CollectionAssert.AreEqual(argMax, indices, "the key's value is the class index, the label's own encoding");
        Assert.AreEqual("PredictedLabel", model.PredictedLabelColumnName);
    }

    [TestMethod]
    public void OutputSchemaBeforeFit_MatchesTheFittedTransformersSchema()
    {
        var ml = new MLContext(seed: 5);
        var data = Named(ml, 64, 1);
        var pipeline = KeyLabelPipeline(ml);
        var before = pipeline.GetOutputSchema(SchemaShapes.Of(data.Schema));
        var model = pipeline.Fit(data);
        var after = SchemaShapes.Of(model.GetOutputSchema(data.Schema));
        foreach (var name in new[] { "Score", "PredictedLabel" })
        {
            var expected = after.Single(c => c.Name == name);
            var actual = before.Single(c => c.Name == name);
            Assert.AreEqual(expected.Kind, actual.Kind, name);
            Assert.AreEqual(expected.ItemType, actual.ItemType, name);
            Assert.AreEqual(expected.IsKey, actual.IsKey, name);
            CollectionAssert.AreEqual(expected.Annotations.Select(a => (a.Name, a.Kind, a.ItemType)).ToArray(),
                actual.Annotations.Select(a => (a.Name, a.Kind, a.ItemType)).ToArray(), $"{name}'s annotations");
        }
        Assert.IsTrue(before.Single(c => c.Name == "PredictedLabel").IsKey);
        model.LastTransformer.Dispose();
    }

    private sealed class TextLabelRow
    {
        [VectorType(64)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public string Label { get; set; } = "";
    }

    [TestMethod]
    public void OutputSchemaBeforeFit_ATextLabel_IsRefusedByName()
    {
        var ml = new MLContext(seed: 6);
        var data = ml.Data.LoadFromEnumerable(new[] { new TextLabelRow { Features = new float[64], Label = "a" } });
        var estimator = ml.Quantization().Qat(TestData.SeededTinyCnn(6), TestData.InputShape);
        var e = Assert.ThrowsExactly<ArgumentException>(() => estimator.GetOutputSchema(SchemaShapes.Of(data.Schema)));
        StringAssert.Contains(e.Message, "'Label'");
        StringAssert.Contains(e.Message, "MapValueToKey");
    }

    private sealed class RegressionRow
    {
        [VectorType(64)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public float Label { get; set; }
    }

    [TestMethod]
    public void Regression_HasScoreOnly_BeforeAndAfterFit()
    {
        var ml = new MLContext(seed: 7);
        var data = ml.Data.LoadFromEnumerable(TestData.QuadrantRows(64, 1).Select(r => new RegressionRow { Features = r.Features, Label = r.Features.Average() }));
        var estimator = ml.Quantization().Observer(new ObserverOptions
        {
            ModelFactory = () => TorchSharp.torch.nn.Sequential(TorchSharp.torch.nn.Flatten(), TorchSharp.torch.nn.Linear(64, 1)),
            InputShape = new long[] { 64 }, Device = QuantDevice.Cpu,
        });
        Assert.IsFalse(estimator.GetOutputSchema(SchemaShapes.Of(data.Schema)).Any(c => c.Name == "PredictedLabel"));
        using var model = estimator.Fit(data);
        Assert.IsNull(model.GetOutputSchema(data.Schema).GetColumnOrNull("PredictedLabel"));
        Assert.IsNull(model.PredictedLabelColumnName);
    }

    [TestMethod]
    public void SaveAndLoad_KeepsThePredictedLabelAndItsValues()
    {
        var ml = new MLContext(seed: 8);
        var model = KeyLabelPipeline(ml).Fit(Named(ml, 256, 1));
        var test = Named(ml, 64, 2);
        var path = Path.Combine(Path.GetTempPath(), $"mlnetquant-predicted-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, test.Schema, path);
            var before = model.Transform(test).GetColumn<uint>("PredictedLabel").ToArray();
            var loaded = new MLContext().Model.Load(path, out _);
            var scored = loaded.Transform(test);
            CollectionAssert.AreEqual(before, scored.GetColumn<uint>("PredictedLabel").ToArray());
            var names = default(VBuffer<ReadOnlyMemory<char>>);
            scored.Schema["PredictedLabel"].GetKeyValues(ref names);
            CollectionAssert.AreEqual(Quadrants, names.DenseValues().Select(n => n.ToString()).ToArray());
            Assert.AreEqual("QAT", QuantizationReport.FromZip(path).Algorithm, "the report is still found inside the chain");
        }
        finally
        {
            model.LastTransformer.Dispose();
            File.Delete(path);
        }
    }
}
