using Microsoft.ML;
using MLNetQuant.OnnxPtq;
using MLNetQuant.UnitTests.Graph;
using Onnx;

namespace MLNetQuant.UnitTests.OnnxPtq;

/// <summary>Weight-only int4 quantization of ONNX models (<c>ml.Quantization().Int4</c>): block-wise 4-bit MatMul
/// weights and embedding tables run by ONNX Runtime's MatMulNBits and GatherBlockQuantized, round to nearest or GPTQ.</summary>
[TestClass]
public sealed class Int4QuantizationTests
{
    private const string TinyBert = "tiny_bert_op13.onnx";

    public TestContext TestContext { get; set; } = null!;

    private static double MeanSquaredError(float[] expected, float[] actual) =>
        expected.Zip(actual, (e, a) => (double)(e - a) * (e - a)).Average();

    [TestMethod]
    public void TinyBert_RunsInt4Kernels_AtAFifthOfTheSize_AfterSaveAndReload_AndGptqLandsCloserThanRoundToNearest()
    {
        var ml = new MLContext(seed: 1);
        var path = ZooModels.Path(TinyBert);
        var calibration = ml.Data.LoadFromEnumerable(ZooModels.Tokens(64, 1));
        using var rtn = ml.Quantization().Int4(new Int4QuantizationOptions { ModelPath = path, BlockSize = 16 }).Fit(calibration);
        using var gptq = ml.Quantization().Int4(new Int4QuantizationOptions { ModelPath = path, BlockSize = 16, Rounding = Int4Rounding.Gptq }).Fit(calibration);

        var held = ZooModels.Tokens(32, 2);
        var expected = ZooModels.TokenScores(path, held);
        var viaRtn = ZooModels.ScoresAfterReload(ml, rtn, calibration.Schema, held);
        var viaGptq = ZooModels.ScoresAfterReload(ml, gptq, calibration.Schema, held);
        var (rtnError, gptqError) = (MeanSquaredError(expected, viaRtn), MeanSquaredError(expected, viaGptq));
        var ratio = (double)rtn.GetOnnxBytes().Length / new FileInfo(path).Length;
        TestContext.WriteLine($"MSE vs float: RTN {rtnError:G4}, GPTQ {gptqError:G4}; cosine RTN {ZooModels.Cosine(expected, viaRtn):F5}, " +
            $"GPTQ {ZooModels.Cosine(expected, viaGptq):F5}; size {ratio:P1}");
        Assert.IsGreaterThanOrEqualTo(0.98, ZooModels.Cosine(expected, viaGptq), "GPTQ's logits stay within cosine 0.98 of float");
        Assert.IsLessThan(rtnError, gptqError, "GPTQ, which sees the inputs, lands closer to float than rounding alone");
        Assert.IsLessThan(0.22, ratio, "4-bit weights and tables with a scale per 16: about a fifth of the file");

        var ops = ZooModels.OptimizedOps(rtn.GetOnnxBytes());
        TestContext.WriteLine(string.Join(", ", ops.GroupBy(o => o).Select(g => $"{g.Key}×{g.Count()}")));
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph;
        var weights = original.Initializer.Where(t => t.Dims.Count == 2).Select(t => t.Name).ToHashSet();
        var weighted = original.Node.Count(n => n.OpType is "MatMul" or "Gemm" && n.Input.Count > 1 && weights.Contains(n.Input[1]));
        Assert.AreEqual(weighted, ops.Count(o => o == "MatMulNBits"), "each MatMul/Gemm with a constant weight runs as MatMulNBits");
        Assert.AreEqual(2, ops.Count(o => o == "GatherBlockQuantized"), "the token and position tables are looked up in int4");
        Assert.IsFalse(ops.Contains("Gemm"), "no float Gemm left");

        var report = QuantizationReport.FromOnnx(gptq.GetOnnxBytes());
        Assert.AreEqual("Int4 GPTQ", report.Algorithm);
        Assert.IsTrue(report.Tensors.All(t => t.Bits == 4 && t.BlockSize == 16 && t.Tensor == QuantType.Weight));
        Assert.AreEqual(weighted + 2, report.Tensors.Count);
    }

    [TestMethod]
    public void Embeddings_StayFloat_WhenGatherIsNotListed_AndExcludedNodesStayFloat()
    {
        var ml = new MLContext(seed: 1);
        var path = ZooModels.Path(TinyBert);
        var firstGemm = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph.Node.First(n => n.OpType == "Gemm").Name;
        var options = new Int4QuantizationOptions { ModelPath = path, Symmetric = true, ExcludedNodes = { firstGemm } };
        options.OpTypes.Remove("Gather");
        using var quantized = ml.Quantization().Int4(options).Fit(ml.Data.LoadFromEnumerable(ZooModels.Tokens(2, 1)));
        var written = ModelProto.Parser.ParseFrom(quantized.GetOnnxBytes()).Graph;
        Assert.IsTrue(written.Node.Any(n => n.Name == firstGemm && n.OpType == "Gemm"), "the excluded node stays float");
        Assert.IsFalse(written.Node.Any(n => n.OpType == "GatherBlockQuantized"), "tables stay float");
        Assert.IsFalse(written.Initializer.Any(t => t.Name.EndsWith(".weight_zero_point", StringComparison.Ordinal)), "symmetric: no zero-points stored");

        var held = ZooModels.Tokens(8, 3);
        var expected = ZooModels.TokenScores(path, held);
        var actual = ZooModels.ScoresAfterReload(ml, quantized, ml.Data.LoadFromEnumerable(held).Schema, held);
        Assert.IsGreaterThanOrEqualTo(0.95, ZooModels.Cosine(expected, actual));
    }

    [TestMethod]
    public void BadOptions_AreNamed()
    {
        var ml = new MLContext(seed: 1);
        var path = ZooModels.Path(TinyBert);
        Assert.AreEqual("BlockSize", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.Quantization().Int4(new Int4QuantizationOptions { ModelPath = path, BlockSize = 24 })).ParamName);
        Assert.AreEqual("BlockSize", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.Quantization().Int4(new Int4QuantizationOptions { ModelPath = path, BlockSize = 8 })).ParamName);
        Assert.AreEqual("AccuracyLevel", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.Quantization().Int4(new Int4QuantizationOptions { ModelPath = path, AccuracyLevel = 5 })).ParamName);
        Assert.AreEqual("CalibrationRows", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.Quantization().Int4(new Int4QuantizationOptions { ModelPath = path, CalibrationRows = -1 })).ParamName);
        Assert.AreEqual("PerChannelWeights", Assert.ThrowsExactly<ArgumentException>(() =>
            ml.Quantization().Int4(new Int4QuantizationOptions { ModelPath = path, PerChannelWeights = false })).ParamName);
        var op = Assert.ThrowsExactly<ArgumentException>(() => ml.Quantization().Int4(new Int4QuantizationOptions { ModelPath = path, OpTypes = { "Conv" } }));
        Assert.AreEqual("OpTypes", op.ParamName);
        var empty = ml.Data.LoadFromEnumerable(Array.Empty<ZooModels.TokenRow>());
        var noRows = Assert.ThrowsExactly<InvalidOperationException>(() =>
            ml.Quantization().Int4(new Int4QuantizationOptions { ModelPath = path, Rounding = Int4Rounding.Gptq }).Fit(empty));
        StringAssert.Contains(noRows.Message, "no rows");
    }
}
