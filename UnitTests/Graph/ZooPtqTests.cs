using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MLNetQuant.OnnxPtq;

namespace MLNetQuant.UnitTests.Graph;

/// <summary>Post-training quantization of every model in ../shared/models/zoo through the one import path: opsets 9–13
/// carried to 13, Observer PTQ calibrated on noise, saved in an ML.NET .zip, reloaded by a fresh MLContext and by a
/// production process, and compared with the float model in ONNX Runtime on held-out inputs; plus the integer-kernel
/// census of ORT's optimised graph.</summary>
[TestClass]
public sealed class ZooPtqTests
{
    private const int Side = 96;
    private const int ImageSize = 3 * Side * Side;

    public TestContext TestContext { get; set; } = null!;

    private sealed class ImageRow
    {
        [VectorType(3, Side, Side)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    private static ImageRow[] Images(int count, int seed) =>
        Enumerable.Range(0, count).Select(i => new ImageRow { Features = ZooModels.Noise(ImageSize, seed * 1000 + i) }).ToArray();

    [TestMethod]
    [DataRow("mobilenet_v2_w05_op11.onnx")]
    [DataRow("mobilenet_v3_small_op13.onnx")]
    [DataRow("squeezenet1_1_op9.onnx")]
    [DataRow("shufflenet_v2_x05_op12.onnx")]
    public void ImageModel_ImportsQuantizesSavesAndReloads_CloseToFloat(string file)
    {
        var ml = new MLContext(seed: 1);
        var path = ZooModels.Path(file);
        var calibration = ml.Data.LoadFromEnumerable(Images(32, 1));
        var held = Images(8, 2);
        using var quantized = ml.Quantization().Observer(new OnnxQuantizationOptions
        {
            ModelPath = path, CalibrationRows = 32, BatchSize = 16, ErrorReportRows = 4,
        }).Fit(calibration);

        var scores = ZooModels.ScoresAfterReload(ml, quantized, calibration.Schema, held);
        using var input = OrtValue.CreateTensorValueFromMemory(held.SelectMany(r => r.Features).ToArray(), new long[] { held.Length, 3, Side, Side });
        var reference = ZooModels.Run(File.ReadAllBytes(path), new[] { ("input", input) });
        var perRow = reference.Length / held.Length;
        var cosines = Enumerable.Range(0, held.Length)
            .Select(i => ZooModels.Cosine(reference.Skip(i * perRow).Take(perRow).ToArray(), scores.Skip(i * perRow).Take(perRow).ToArray())).ToArray();
        TestContext.WriteLine($"{file}: cosine min {cosines.Min():F4} mean {cosines.Average():F4}; " +
            $"{quantized.Report.Tensors.Count(t => t.Tensor == QuantType.Weight)} weights quantized; worst layers " +
            string.Join(", ", quantized.Report.LayerErrors!.Take(3).Select(e => $"{e.Node} {e.SqnrDb} dB")));
        Assert.IsGreaterThanOrEqualTo(0.99, cosines.Min(), $"{file}: every held-out row's output stays within cosine 0.99 of float");
        AssertIntegerKernels(file, quantized);

        // The same .zip in a fresh process that references only Microsoft.ML, the OnnxTransformer and ONNX Runtime.
        var zip = Path.Combine(Path.GetTempPath(), $"mlnetquant-zoo-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(quantized, calibration.Schema, zip);
            var (production, _, _) = Export.ProductionProcess.Score(zip, held.SelectMany(r => r.Features).ToArray(), ImageSize);
            CollectionAssert.AreEqual(scores, production, $"{file}: a production process computes what the reloaded model computes");
        }
        finally
        {
            File.Delete(zip);
        }
    }

    // The integer-kernel census: every quantized Conv/ConvTranspose/Gemm/MatMul runs as an integer kernel in ORT's
    // optimised graph, except those the report lists with a reason; counted independently here.
    private void AssertIntegerKernels(string file, QuantizedModelTransformer model, params string[] expectedFloat)
    {
        var ops = ZooModels.OptimizedOps(model.GetOnnxBytes());
        TestContext.WriteLine($"{file} optimised: " + string.Join(", ", ops.GroupBy(o => o).OrderByDescending(g => g.Count()).Select(g => $"{g.Key}×{g.Count()}")));
        var weighted = model.Report.Tensors.Where(t => t.Tensor == QuantType.Weight).Select(t => t.Layer).Distinct().Count();
        var integer = ops.Count(o => o is "QLinearConv" or "QGemm" or "QLinearMatMul" or "MatMulInteger" or "ConvInteger" or "MatMulIntegerToFloat");
        var floatKernels = model.Report.FloatKernels!;
        TestContext.WriteLine($"{file}: {weighted} quantized weighted nodes, {integer} integer kernels; float: " +
            string.Join("; ", floatKernels.Select(k => $"{k.Node} ({k.OpType}): {k.Reason}")));
        CollectionAssert.AreEquivalent(expectedFloat, floatKernels.Select(k => k.OpType).ToArray(), $"{file}: the float kernels the report names");
        Assert.AreEqual(weighted - floatKernels.Count, integer, $"{file}: every other quantized weighted node runs as an integer kernel");
    }

    private sealed class TileRow
    {
        [VectorType(3, 64, 64)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    [TestMethod]
    public void DynamicHeightAndWidth_QuantizedOnce_RunsAtTwoSizes()
    {
        const string file = "tiny_dbnet_op11_dynamic_hw.onnx";
        var ml = new MLContext(seed: 1);
        var path = ZooModels.Path(file);
        var calibration = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 16).Select(i => new TileRow { Features = ZooModels.Noise(3 * 64 * 64, 100 + i) }));
        using var quantized = ml.Quantization().Observer(new OnnxQuantizationOptions { ModelPath = path, CalibrationRows = 16, BatchSize = 8 }).Fit(calibration);
        var qdq = quantized.GetOnnxBytes();
        var input = global::Onnx.ModelProto.Parser.ParseFrom(qdq).Graph.Input.Single();
        CollectionAssert.AreEqual(new[] { "batch", "", "height", "width" }, input.Type.TensorType.Shape.Dim.Select(d => d.DimParam).ToArray(),
            "the quantized model keeps the symbolic height and width");

        // ML.NET at the calibration size, after a save and a reload by a fresh context.
        var held = Enumerable.Range(0, 4).Select(i => new TileRow { Features = ZooModels.Noise(3 * 64 * 64, 200 + i) }).ToArray();
        var viaMlNet = ZooModels.ScoresAfterReload(ml, quantized, calibration.Schema, held);
        using (var tiles = OrtValue.CreateTensorValueFromMemory(held.SelectMany(r => r.Features).ToArray(), new long[] { held.Length, 3, 64, 64 }))
        {
            var cosine = ZooModels.Cosine(ZooModels.Run(File.ReadAllBytes(path), new[] { ("input", tiles) }), viaMlNet);
            TestContext.WriteLine($"{file} 64×64 through the reloaded .zip: cosine {cosine:F4}");
            Assert.IsGreaterThanOrEqualTo(0.99, cosine);
        }

        // The same quantized model in ONNX Runtime at another size.
        var larger = ZooModels.Noise(2 * 3 * 96 * 128, 300);
        using var floatInput = OrtValue.CreateTensorValueFromMemory(larger, new long[] { 2, 3, 96, 128 });
        using var quantizedInput = OrtValue.CreateTensorValueFromMemory(larger, new long[] { 2, 3, 96, 128 });
        var expected = ZooModels.Run(File.ReadAllBytes(path), new[] { ("input", floatInput) });
        var actual = ZooModels.Run(qdq, new[] { ("Features", quantizedInput) });
        Assert.HasCount(2 * 96 * 128, actual, "a probability map of the input's size");
        var largerCosine = ZooModels.Cosine(expected, actual);
        // A map of probabilities near 0.5 has a cosine near 1 whatever it holds: check the values themselves too.
        var worst = expected.Zip(actual).Max(p => Math.Abs(p.First - p.Second));
        var centered = ZooModels.Cosine(expected.Select(v => v - expected.Average()).ToArray(), actual.Select(v => v - actual.Average()).ToArray());
        TestContext.WriteLine($"{file} 96×128 in ONNX Runtime: cosine {largerCosine:F4}, centred cosine {centered:F4}, largest probability error {worst:F4}");
        Assert.IsGreaterThanOrEqualTo(0.99, largerCosine);
        Assert.IsGreaterThanOrEqualTo(0.99, centered, "the map's variations follow the float model's");
        Assert.IsLessThan(0.05, worst, "no pixel's probability moves by 5 points");
        AssertIntegerKernels(file, quantized, "ConvTranspose", "ConvTranspose");
    }

    [TestMethod]
    public void TinyBert_FedFromTwoInt64Columns_QuantizesSavesAndReloads()
    {
        const string file = "tiny_bert_op13.onnx";
        var ml = new MLContext(seed: 1);
        var path = ZooModels.Path(file);
        var calibration = ml.Data.LoadFromEnumerable(ZooModels.Tokens(32, 1));
        using var quantized = ml.Quantization().Observer(new OnnxQuantizationOptions
        {
            ModelPath = path, CalibrationRows = 32, BatchSize = 16, ErrorReportRows = 8,
        }).Fit(calibration);
        CollectionAssert.AreEqual(new[] { "input_ids", "attention_mask" }, quantized.InputColumnNames.ToArray(), "each input read from its own column");

        var held = ZooModels.Tokens(8, 2);
        var viaMlNet = ZooModels.ScoresAfterReload(ml, quantized, calibration.Schema, held);
        using var ids = OrtValue.CreateTensorValueFromMemory(held.SelectMany(r => r.input_ids).ToArray(), new long[] { held.Length, 16 });
        using var mask = OrtValue.CreateTensorValueFromMemory(held.SelectMany(r => r.attention_mask).ToArray(), new long[] { held.Length, 16 });
        var expected = ZooModels.Run(File.ReadAllBytes(path), new[] { ("input_ids", ids), ("attention_mask", mask) });
        var perRow = expected.Length / held.Length;
        var cosines = Enumerable.Range(0, held.Length)
            .Select(i => ZooModels.Cosine(expected.Skip(i * perRow).Take(perRow).ToArray(), viaMlNet.Skip(i * perRow).Take(perRow).ToArray())).ToArray();
        TestContext.WriteLine($"{file}: cosine min {cosines.Min():F4} mean {cosines.Average():F4}; worst layers " +
            string.Join(", ", quantized.Report.LayerErrors!.Take(4).Select(e => $"{e.Node} {e.SqnrDb} dB")));
        Assert.IsGreaterThanOrEqualTo(0.99, cosines.Min());
        AssertIntegerKernels(file, quantized);
    }
}
