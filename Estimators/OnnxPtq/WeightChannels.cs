using MLNetQuant.Export;
using MLNetQuant.Graph;
using Onnx;

namespace MLNetQuant.OnnxPtq;

/// <summary>Which output and input channel each stored value of a Conv (any group count), Gemm or MatMul weight belongs
/// to: what cross-layer equalization scales. ConvTranspose is not covered (its grouped layout differs; equalization
/// leaves it alone).</summary>
internal sealed class WeightChannels
{
    private readonly Func<int, int> _output;
    private readonly Func<int, int> _input;

    private WeightChannels(int outputs, int inputs, Func<int, int> output, Func<int, int> input)
    {
        Outputs = outputs;
        Inputs = inputs;
        _output = output;
        _input = input;
    }

    /// <summary>Output channels (Conv: filters; Gemm/MatMul: N).</summary>
    public int Outputs { get; }

    /// <summary>Input channels the node reads (Conv: all groups together; Gemm/MatMul: K).</summary>
    public int Inputs { get; }

    /// <summary>The output channel of the value stored at <paramref name="index"/>.</summary>
    public int OutputOf(int index) => _output(index);

    /// <summary>The input channel of the value stored at <paramref name="index"/>.</summary>
    public int InputOf(int index) => _input(index);

    /// <summary>The layout of <paramref name="node"/>'s weight, or null for op types it does not cover.</summary>
    public static WeightChannels? Of(NodeProto node, TensorProto weight)
    {
        switch (node.OpType)
        {
            case "Conv" when weight.Dims.Count >= 3:
            {
                // [Cout, Cin / group, k…]: input channel = group × (Cin / group) + local index.
                var outputs = (int)weight.Dims[0];
                var perGroupIn = (int)weight.Dims[1];
                var groups = (int)GraphEditor.Int(node, "group", 1);
                var kernel = (int)weight.Dims.Skip(2).Aggregate(1L, (a, b) => a * b);
                var perGroupOut = outputs / groups;
                return new WeightChannels(outputs, perGroupIn * groups, i => i / (perGroupIn * kernel),
                    i => i / (perGroupIn * kernel) / perGroupOut * perGroupIn + i / kernel % perGroupIn);
            }
            case "Gemm" or "MatMul" when weight.Dims.Count == 2:
            {
                var matrix = new MatMulWeight(node, weight, Array.Empty<float>());
                return matrix.Transposed
                    ? new WeightChannels(matrix.N, matrix.K, i => i / matrix.K, i => i % matrix.K)
                    : new WeightChannels(matrix.N, matrix.K, i => i % matrix.N, i => i / matrix.N);
            }
            default:
                return null;
        }
    }
}
