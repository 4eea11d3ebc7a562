using MLNetQuant.Graph;
using MLNetQuant.Onnx;
using Onnx;

namespace MLNetQuant.Export;

/// <summary>Zero input channels for a quantized Conv whose input channel count ONNX Runtime's fast int8 convolution
/// cannot take. MLAS's symmetric indirect convolution (uint8 activations × int8 weights with zero-point 0, NHWC) needs
/// the input channels in multiples of 4; an RGB image's first Conv (3 channels) otherwise falls back to im2col + GEMM —
/// ResNet-18's 7×7 stem ran at about a quarter of the other convs' speed per multiply-add (26 % of the int8 model's time
/// at batch 32). The weight gains zero channels and the float input as many zero channels before its QuantizeLinear:
/// exact, since a zero weight adds nothing whatever the input holds.</summary>
internal static class ConvChannelPadding
{
    /// <summary>The input channel multiple the symmetric kernel takes.</summary>
    public const int Alignment = 4;

    // The kernel also wants at least 16 output channels in multiples of 4 (it packs 16 at a time).
    private const int MinimumOutputChannels = 16;

    /// <summary>How many zero channels <paramref name="node"/>'s input and weight need (0: none, or padding would not
    /// reach the fast kernel — grouped convs, asymmetric or unsigned weights, few output channels).</summary>
    public static int ExtraChannels(NodeProto node, QuantizedWeight weight)
    {
        if (node.OpType != "Conv" || GraphEditor.Int(node, "group", 1) != 1 || !weight.Signed || weight.ZeroPoints.Any(z => z != 0) ||
            weight.Shape.Length < 3 || weight.Shape[0] < MinimumOutputChannels || weight.Shape[0] % Alignment != 0)
            return 0;
        var channels = weight.Shape[1];
        return channels % Alignment == 0 ? 0 : (int)(Alignment - channels % Alignment);
    }

    /// <summary>The weight with <paramref name="extra"/> zero input channels appended.</summary>
    public static QuantizedWeight PadWeight(QuantizedWeight weight, int extra)
    {
        var shape = weight.Shape.ToArray();
        var (outputs, inputs) = (shape[0], shape[1]);
        var kernel = shape.Skip(2).Aggregate(1L, (a, b) => a * b);
        shape[1] = inputs + extra;
        var ints = new int[outputs * shape[1] * kernel];
        for (var o = 0L; o < outputs; o++)
            Array.Copy(weight.Ints, o * inputs * kernel, ints, o * shape[1] * kernel, inputs * kernel);
        return weight with { Ints = ints, Shape = shape };
    }

    /// <summary>Pad(<paramref name="input"/>) with <paramref name="extra"/> zero channels after the last along axis 1 of a
    /// rank-<paramref name="rank"/> tensor.</summary>
    public static string PadInput(OnnxGraphBuilder onnx, string input, int rank, int extra, string name)
    {
        var pads = new long[2 * rank];
        pads[rank + 1] = extra;
        var padsName = onnx.Initializer($"{name}.channel_pads", pads, pads.Length);
        return onnx.Node("Pad", $"{name}.channel_pad", new[] { input, padsName });
    }
}
