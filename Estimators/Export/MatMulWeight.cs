using MLNetQuant.Graph;
using Onnx;

namespace MLNetQuant.Export;

/// <summary>A MatMul/Gemm's constant 2-D weight seen as the [K, N] matrix the product multiplies by: a MatMul's B as it
/// is stored, a Gemm's B read transposed when <c>transB</c> is set (stored [N, K]). One place for the index arithmetic
/// the dynamic and int4 rewriters, GPTQ's calibration and SmoothQuant all need.</summary>
internal sealed class MatMulWeight
{
    public MatMulWeight(NodeProto node, TensorProto weight, float[] values)
    {
        Values = values;
        Transposed = node.OpType == "Gemm" && GraphEditor.Int(node, "transB", 0) != 0;
        var (rows, columns) = ((int)weight.Dims[0], (int)weight.Dims[1]);
        (K, N) = Transposed ? (columns, rows) : (rows, columns);
    }

    /// <summary>The weight's values in storage order.</summary>
    public float[] Values { get; }

    /// <summary>Whether storage is [N, K] (a Gemm with transB).</summary>
    public bool Transposed { get; }

    /// <summary>The reduction dimension: the activation's last axis.</summary>
    public int K { get; }

    /// <summary>The output columns.</summary>
    public int N { get; }

    /// <summary>The weight at input channel <paramref name="k"/>, output column <paramref name="n"/>.</summary>
    public float At(int k, int n) => Transposed ? Values[n * K + k] : Values[k * N + n];

    /// <summary>The input channel (K index) of the value stored at <paramref name="index"/>.</summary>
    public int InputChannelOf(int index) => Transposed ? index % K : index / N;

    /// <summary>The weight of <paramref name="node"/> when it is a default-domain MatMul or Gemm (without transA) of a
    /// float activation (<paramref name="isFloat"/>) and a constant float 2-D initializer; otherwise null.</summary>
    public static TensorProto? Find(NodeProto node, IReadOnlyDictionary<string, TensorProto> initializers, Func<string, bool> isFloat) =>
        node.OpType is "MatMul" or "Gemm" && node.Domain is "" or "ai.onnx" && node.Input.Count >= 2 && isFloat(node.Input[0]) &&
        initializers.TryGetValue(node.Input[1], out var weight) && weight.DataType == OnnxTensors.Float && weight.Dims.Count == 2 &&
        (node.OpType != "Gemm" || GraphEditor.Int(node, "transA", 0) == 0) ? weight : null;

    /// <summary>Reads <paramref name="weight"/>'s values.</summary>
    public static MatMulWeight Read(NodeProto node, TensorProto weight) => new(node, weight, OnnxTensors.Floats(weight));
}
