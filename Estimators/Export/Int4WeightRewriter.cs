using MLNetQuant.Graph;
using MLNetQuant.Onnx;
using Onnx;

namespace MLNetQuant.Export;

/// <summary>Rewrites a float graph for weight-only int4 quantization with ONNX Runtime's block-quantized contrib ops
/// (domain com.microsoft), which keep the weights packed two per byte in memory and dequantize them inside the kernel:
/// <list type="bullet">
/// <item>MatMul/Gemm with a constant 2-D weight → MatMulNBits(A, B, scales[, zero_points][, bias]): B is
/// [N, K/block, block/2] bytes, each block of <c>block</c> consecutive values along K with its own scale (and 4-bit
/// zero-point when asymmetric; 8, the kernel's default, when symmetric), low nibble first.</item>
/// <item>Gather from a constant 2-D table along axis 0 → GatherBlockQuantized: the table as [rows, width/2] bytes, one
/// scale per block of each row. Embedding tables are most of a small transformer's bytes (MiniLM-L6: 47 of 91 MB), so
/// int4 sizes are only reached with them.</item>
/// </list>
/// Weights are rounded to nearest on each block's fitted grid (<see cref="Int4Blocks"/>), or, where calibration gave
/// the input's second moments, by GPTQ (<see cref="Gptq"/>); tables are always rounded to nearest.</summary>
internal static class Int4WeightRewriter
{
    /// <summary>Rewrites <paramref name="model"/> in place (the op types of <paramref name="opTypes"/>, except the
    /// <paramref name="excluded"/> nodes, whose float inputs <paramref name="elementTypes"/> confirms); returns a report
    /// entry per quantized weight or table. <paramref name="hessians"/> holds Σ xᵀx per MatMul/Gemm input tensor for
    /// GPTQ; weights of nodes whose input has none are rounded to nearest.</summary>
    public static List<QuantizedTensorReport> Rewrite(ModelProto model, ISet<string> opTypes, ISet<string> excluded, int blockSize, bool symmetric,
        int accuracyLevel, IReadOnlyDictionary<string, int> elementTypes, IReadOnlyDictionary<string, TorchSharp.torch.Tensor> hessians)
    {
        var graph = model.Graph;
        var onnx = new OnnxGraphBuilder(graph);
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var report = new List<QuantizedTensorReport>();
        bool IsFloat(string tensor) => elementTypes.TryGetValue(tensor, out var type) && type == OnnxTensors.Float;
        TensorProto? Constant(string name, int rank) =>
            initializers.TryGetValue(name, out var t) && t.DataType == OnnxTensors.Float && t.Dims.Count == rank ? t : null;
        QuantizedTensorReport Report(NodeProto node) => new(node.Name, node.OpType, QuantType.Weight, 4,
            symmetric ? QuantScheme.PerChannelSymmetric : QuantScheme.PerChannelAffine, QuantDtype.UInt, Array.Empty<float>(),
            Array.Empty<long>()) { BlockSize = blockSize };

        var nodes = graph.Node.ToList();
        graph.Node.Clear();
        foreach (var node in nodes)
        {
            var selected = opTypes.Contains(node.OpType) && !excluded.Contains(node.Name) && node.Domain is "" or "ai.onnx";
            if (selected && MatMulWeight.Find(node, initializers, IsFloat) is { } tensor)
            {
                var weight = MatMulWeight.Read(node, tensor);
                var (k, n) = (weight.K, weight.N);
                var alpha = node.OpType == "Gemm" ? GraphEditor.Float(node, "alpha", 1f) : 1f;
                // MatMulNBits holds B as [N, K]: row n of the blocks is output column n.
                float W(int row, int ki) => alpha * weight.At(ki, row);
                var blocks = hessians.TryGetValue(node.Input[0], out var hessian)
                    ? Gptq.Quantize(Rows(n, k, W), n, k, hessian, blockSize, symmetric)
                    : Int4Blocks.RoundToNearest(n, k, W, blockSize, symmetric, padToBlock: true);
                report.Add(Report(node));

                var blockCount = blocks.BlockCount;
                var inputs = new List<string>
                {
                    node.Input[0],
                    onnx.Initializer($"{node.Name}.weight_int4", blocks.Packed, n, blockCount, blockSize / 2),
                    onnx.Initializer($"{node.Name}.weight_scale", blocks.Scales, n, blockCount),
                    symmetric ? "" : onnx.Initializer($"{node.Name}.weight_zero_point", blocks.PackedZeroPoints(), n, (blockCount + 1) / 2),
                };
                var bias = node.OpType == "Gemm" && node.Input.Count > 2 && node.Input[2].Length > 0 ? node.Input[2] : null;
                var beta = node.OpType == "Gemm" ? GraphEditor.Float(node, "beta", 1f) : 1f;
                // A constant [N] bias goes into the kernel (its optional sixth input); any other C is added after it.
                var biasInside = bias is not null && Constant(bias, 1) is { } c && c.Dims[0] == n;
                if (biasInside)
                {
                    inputs.Add(""); // g_idx, deprecated
                    inputs.Add(beta == 1f ? bias! : onnx.Initializer($"{node.Name}.bias_beta", OnnxTensors.Floats(initializers[bias!]).Select(v => v * beta).ToArray(), n));
                }
                var attributes = new Dictionary<string, object>
                {
                    ["K"] = (long)k, ["N"] = (long)n, ["bits"] = 4L, ["block_size"] = (long)blockSize, ["accuracy_level"] = (long)accuracyLevel,
                };
                var matmul = ContribNode(onnx, "MatMulNBits", $"{node.Name}.matmul_nbits", inputs, attributes);
                if (bias is null || biasInside)
                    Rename(onnx, node.Output[0]);
                else
                {
                    var scaledBias = beta == 1f ? bias : onnx.Node("Mul", $"{node.Name}.beta_bias", new[] { bias, onnx.Initializer($"{node.Name}.beta", new[] { beta }) });
                    var add = new NodeProto { OpType = "Add", Name = onnx.Unique($"{node.Name}.bias") };
                    add.Input.Add(matmul);
                    add.Input.Add(scaledBias);
                    add.Output.Add(node.Output[0]);
                    onnx.Append(add);
                }
                continue;
            }
            if (selected && node.OpType == "Gather" && GraphEditor.Int(node, "axis", 0) == 0 && Constant(node.Input[0], 2) is { } table &&
                table.Dims[1] % 2 == 0)
            {
                var values = OnnxTensors.Floats(table);
                var (rows, width) = ((int)table.Dims[0], (int)table.Dims[1]);
                var blocks = Int4Blocks.RoundToNearest(rows, width, (row, w) => values[row * width + w], blockSize, symmetric, padToBlock: false);
                report.Add(Report(node));
                var blockCount = blocks.BlockCount;
                var inputs = new List<string>
                {
                    onnx.Initializer($"{node.Name}.table_int4", blocks.Packed, rows, width / 2),
                    node.Input[1],
                    onnx.Initializer($"{node.Name}.table_scale", blocks.Scales, rows, blockCount),
                };
                if (!symmetric)
                    inputs.Add(onnx.Initializer($"{node.Name}.table_zero_point", blocks.PackedZeroPoints(), rows, (blockCount + 1) / 2));
                var attributes = new Dictionary<string, object>
                {
                    ["gather_axis"] = 0L, ["quantize_axis"] = 1L, ["block_size"] = (long)blockSize, ["bits"] = 4L,
                };
                ContribNode(onnx, "GatherBlockQuantized", $"{node.Name}.gather_int4", inputs, attributes);
                Rename(onnx, node.Output[0]);
                continue;
            }
            onnx.Append(node);
        }
        var editor = new GraphEditor(model);
        if (report.Count > 0) editor.ImportMicrosoftDomain();
        editor.RemoveUnused(); // the float weights and tables replaced
        graph.ValueInfo.Clear();
        return report;
    }

    // The [rows, length] matrix of at(row, i), row-major.
    private static float[] Rows(int rows, int length, Func<int, int, float> at)
    {
        var matrix = new float[(long)rows * length];
        for (var row = 0; row < rows; row++)
            for (var i = 0; i < length; i++) matrix[(long)row * length + i] = at(row, i);
        return matrix;
    }

    private static string ContribNode(OnnxGraphBuilder onnx, string opType, string name, IEnumerable<string> inputs, IReadOnlyDictionary<string, object> attributes)
    {
        var output = onnx.Node(opType, name, inputs, attributes);
        onnx.LastNode.Domain = GraphEditor.MicrosoftDomain;
        return output;
    }

    // The last node written takes over the replaced node's output tensor, so its consumers read it unchanged.
    private static void Rename(OnnxGraphBuilder onnx, string original) => onnx.LastNode.Output[0] = original;
}
