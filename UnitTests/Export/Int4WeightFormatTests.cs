using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using MLNetQuant.Export;
using MLNetQuant.Graph;
using MLNetQuant.Onnx;
using MLNetQuant.UnitTests.Graph;
using Onnx;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Export;

/// <summary>The int4 block format against ONNX Runtime's own kernels: what MLNetQuant packs is what MatMulNBits and
/// GatherBlockQuantized compute with, decoded here independently from the contrib-op spec (codes two per byte, low
/// nibble first; value = (code − zero-point) · scale per block).</summary>
[TestClass]
public sealed class Int4WeightFormatTests
{
    // The spec's decoding of a [rows, blocks·block/2] (padded) or [rows, length/2] (packed) code matrix.
    private static float Decode(Int4Blocks blocks, byte[] packed, int rowCodes, int row, int i)
    {
        var position = (long)row * rowCodes + i;
        var code = (packed[position / 2] >> (position % 2 == 0 ? 0 : 4)) & 0xF;
        var slot = row * blocks.BlockCount + i / blocks.BlockSize;
        return (code - blocks.ZeroPoints[slot]) * blocks.Scales[slot];
    }

    [TestMethod]
    public void Blocks_HoldEveryCodeOnItsGrid_PadWithTheZeroPoint_AndKeepTheSymmetricExtremeExact()
    {
        // One row, 20 values, blocks of 16: the second block has 4 values and 12 padding codes.
        var values = Enumerable.Range(0, 20).Select(i => (i - 5) * 0.25f).ToArray();
        var affine = Int4Blocks.RoundToNearest(1, 20, (_, i) => values[i], 16, symmetric: false, padToBlock: true);
        Assert.AreEqual(2, affine.BlockCount);
        Assert.HasCount(16, affine.Packed, "two blocks of 16 codes, two per byte");
        for (var i = 0; i < 16; i++)
            Assert.AreEqual(values[i], Decode(affine, affine.Packed, 32, 0, i), affine.Scales[0] / 2 + 1e-6, $"value {i} within half a step");
        for (var i = 20; i < 32; i++) Assert.AreEqual(0f, Decode(affine, affine.Packed, 32, 0, i), "padding decodes to 0");

        var symmetric = Int4Blocks.RoundToNearest(1, 16, (_, i) => values[i] - 3f, 16, symmetric: true, padToBlock: true);
        Assert.AreEqual(8, symmetric.ZeroPoints[0]);
        var extreme = Enumerable.Range(0, 16).OrderByDescending(i => Math.Abs(values[i] - 3f)).First();
        Assert.AreEqual(values[extreme] - 3f, Decode(symmetric, symmetric.Packed, 16, 0, extreme), 1e-6, "the largest magnitude is exact");

        var zeros = Int4Blocks.RoundToNearest(2, 16, (_, _) => 0f, 16, symmetric: false, padToBlock: true);
        Assert.IsTrue(zeros.Scales.All(s => s > 0 && float.IsFinite(s)), "an all-zero block keeps a finite positive scale");
    }

    [TestMethod]
    public void PackedZeroPoints_AreTwoPerByte_LowNibbleFirst_PerRow()
    {
        var values = new float[2 * 48];
        for (var i = 0; i < values.Length; i++) values[i] = i % 7 - (i / 16) % 3 * 2f;
        var blocks = Int4Blocks.RoundToNearest(2, 48, (row, i) => values[row * 48 + i], 16, symmetric: false, padToBlock: true);
        var packed = blocks.PackedZeroPoints();
        Assert.HasCount(4, packed, "two rows × ⌈3 blocks / 2⌉");
        for (var row = 0; row < 2; row++)
            for (var block = 0; block < 3; block++)
                Assert.AreEqual(blocks.ZeroPoints[row * 3 + block], (packed[row * 2 + block / 2] >> (block % 2 * 4)) & 0xF);
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void MatMulNBits_ComputesWithTheWeightsAsDecoded(bool symmetric)
    {
        // K = 40 is not a multiple of the block (16): the last block is padded.
        const int k = 40, n = 24, m = 5;
        var weight = ZooModels.Noise(k * n, 11);
        var onnx = new OnnxGraphBuilder();
        var a = onnx.Input("a", k);
        onnx.Output("y", onnx.Node("MatMul", "matmul", new[] { a, onnx.Initializer("w", weight, k, n) }), OnnxGraphBuilder.ElementType.Float, n);
        var model = ModelProto.Parser.ParseFrom(onnx.Build(13, new Dictionary<string, string>()));
        var types = new Dictionary<string, int> { ["a"] = OnnxTensors.Float };
        var report = Int4WeightRewriter.Rewrite(model, new HashSet<string> { "MatMul" }, new HashSet<string>(), 16, symmetric, 0, types,
            new Dictionary<string, Tensor>());
        Assert.HasCount(1, report);
        Assert.AreEqual(16, report[0].BlockSize);
        var node = model.Graph.Node.Single(x => x.OpType == "MatMulNBits");
        Assert.AreEqual("com.microsoft", node.Domain);
        Assert.AreEqual(symmetric ? "" : "matmul.weight_zero_point", node.Input.Count > 3 ? node.Input[3] : "");

        var expected = Int4Blocks.RoundToNearest(n, k, (row, i) => weight[i * n + row], 16, symmetric, padToBlock: true);
        var codes = model.Graph.Initializer.Single(t => t.Name == node.Input[1]);
        CollectionAssert.AreEqual(new long[] { n, 3, 8 }, codes.Dims.ToArray());
        CollectionAssert.AreEqual(expected.Packed, codes.RawData.ToByteArray(), "the packed codes are the blocks' codes");

        var input = ZooModels.Noise(m * k, 12);
        using var value = OrtValue.CreateTensorValueFromMemory(input, new long[] { m, k });
        var actual = ZooModels.Run(model.ToByteArray(), new[] { ("a", value) });
        for (var row = 0; row < m; row++)
            for (var column = 0; column < n; column++)
            {
                double sum = 0;
                for (var i = 0; i < k; i++) sum += input[row * k + i] * Decode(expected, expected.Packed, 48, column, i);
                Assert.AreEqual(sum, actual[row * n + column], 1e-4 + Math.Abs(sum) * 1e-5, $"y[{row}, {column}]");
            }
    }

    [TestMethod]
    public void GatherBlockQuantized_LooksUpTheRowsAsDecoded()
    {
        const int rows = 10, width = 48;
        var table = ZooModels.Noise(rows * width, 21);
        var onnx = new OnnxGraphBuilder();
        var ids = onnx.Input("ids", 3);
        onnx.Output("y", onnx.Node("Gather", "embed", new[] { onnx.Initializer("table", table, rows, width), ids }), OnnxGraphBuilder.ElementType.Float, 3, width);
        var model = ModelProto.Parser.ParseFrom(onnx.Build(13, new Dictionary<string, string>()));
        model.Graph.Input[0].Type.TensorType.ElemType = OnnxTensors.Int64;
        var report = Int4WeightRewriter.Rewrite(model, new HashSet<string> { "Gather" }, new HashSet<string>(), 16, false, 0,
            new Dictionary<string, int> { ["ids"] = OnnxTensors.Int64 }, new Dictionary<string, Tensor>());
        Assert.AreEqual("Gather", report.Single().OpType);
        Assert.AreEqual("GatherBlockQuantized", model.Graph.Node.Single(x => x.Domain == "com.microsoft").OpType);
        Assert.IsFalse(model.Graph.Node.Any(x => x.OpType == "Gather"), "no float lookup left");

        var expected = Int4Blocks.RoundToNearest(rows, width, (row, i) => table[row * width + i], 16, symmetric: false, padToBlock: false);
        var lookups = new long[] { 7, 0, 9, 3, 3, 1 };
        using var value = OrtValue.CreateTensorValueFromMemory(lookups, new long[] { 2, 3 });
        var actual = ZooModels.Run(model.ToByteArray(), new[] { ("ids", value) });
        for (var j = 0; j < lookups.Length; j++)
            for (var i = 0; i < width; i++)
                Assert.AreEqual(Decode(expected, expected.Packed, width, (int)lookups[j], i), actual[j * width + i], 1e-6, $"row {lookups[j]}, value {i}");
    }

    [TestMethod]
    public void Gptq_EqualsRoundToNearest_ForUncorrelatedInputs_AndLowersTheOutputError_ForCorrelatedOnes()
    {
        const int k = 64, n = 16, samples = 512;
        var weight = ZooModels.Noise(n * k, 31);
        var blocksRtn = Int4Blocks.RoundToNearest(n, k, (row, i) => weight[row * k + i], 32, symmetric: false, padToBlock: true);

        using (var identity = eye(k, dtype: ScalarType.Float64).mul(samples))
        {
            var gptq = Gptq.Quantize(weight, n, k, identity, 32, symmetric: false);
            CollectionAssert.AreEqual(blocksRtn.Packed, gptq.Packed, "H ∝ I: no error to move, the codes are round-to-nearest's");
        }

        // Inputs with strongly correlated features (a shared component plus noise), as activations are.
        var shared = ZooModels.Noise(samples, 32);
        var noise = ZooModels.Noise(samples * k, 33);
        var x = new float[samples * k];
        for (var s = 0; s < samples; s++)
            for (var i = 0; i < k; i++) x[s * k + i] = shared[s] * (1 + i % 5) + 0.3f * noise[s * k + i];
        using var inputs = tensor(x, new long[] { samples, k }).to(ScalarType.Float64);
        using var hessian = inputs.t().matmul(inputs);
        var blocksGptq = Gptq.Quantize(weight, n, k, hessian, 32, symmetric: false);

        double OutputError(Int4Blocks blocks)
        {
            double error = 0;
            for (var s = 0; s < samples; s++)
                for (var row = 0; row < n; row++)
                {
                    double difference = 0;
                    for (var i = 0; i < k; i++) difference += x[s * k + i] * (weight[row * k + i] - Decode(blocks, blocks.Packed, k, row, i));
                    error += difference * difference;
                }
            return error;
        }
        var (rtn, gptqError) = (OutputError(blocksRtn), OutputError(blocksGptq));
        Assert.IsLessThan(0.7 * rtn, gptqError, $"GPTQ's output error {gptqError:G4} well below round-to-nearest's {rtn:G4}");
    }
}
