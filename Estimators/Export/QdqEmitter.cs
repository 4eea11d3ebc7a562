namespace MLNetQuant.Onnx;

/// <summary>The QDQ building blocks ONNX Runtime fuses into integer kernels, written through an
/// <see cref="OnnxGraphBuilder"/>: activation QuantizeLinear→DequantizeLinear pairs, quantized weight initializers
/// with DequantizeLinear, int32 biases. Shared by the exporter of trained networks and the post-training quantizer of
/// ONNX models, so there is one QDQ writer.</summary>
internal sealed class QdqEmitter
{
    public QdqEmitter(OnnxGraphBuilder onnx) => Onnx = onnx;

    /// <summary>The graph being written.</summary>
    public OnnxGraphBuilder Onnx { get; }

    /// <summary>QuantizeLinear→DequantizeLinear of <paramref name="tensor"/> on a per-tensor grid; a grid narrower than
    /// its 8-bit storage gets a Clip to its real range first, so QuantizeLinear saturates where fake quantization
    /// does. Returns the dequantized tensor's name.</summary>
    public string QuantizeDequantize(string tensor, float scale, long zeroPoint, QuantRange range, bool signed, string name)
    {
        var source = tensor;
        var storage = signed ? (Min: -128L, Max: 127L) : (Min: 0L, Max: 255L);
        if (range.QMin > storage.Min || range.QMax < storage.Max)
            source = Clip($"{name}.clip", source, (range.QMin - zeroPoint) * scale, (range.QMax - zeroPoint) * scale);
        var scaleName = Onnx.Initializer($"{name}.scale", new[] { scale });
        var zeroName = signed
            ? Onnx.Initializer($"{name}.zero_point", new[] { (sbyte)zeroPoint })
            : Onnx.Initializer($"{name}.zero_point", new[] { (byte)zeroPoint });
        var q = Onnx.Node("QuantizeLinear", $"{name}.q", new[] { source, scaleName, zeroName });
        return Onnx.Node("DequantizeLinear", $"{name}.dq", new[] { q, scaleName, zeroName });
    }

    /// <summary>An 8-bit weight initializer (int8 when <paramref name="signed"/>, else uint8) of the given integers and
    /// its DequantizeLinear with one scale and zero-point per channel along <paramref name="axis"/>.</summary>
    public string DequantizedWeight(string name, int[] ints, float[] scales, long[] zeroPoints, bool signed, long[] shape, long axis)
    {
        var channels = scales.Length;
        string stored, zero;
        if (signed)
        {
            stored = Onnx.Initializer($"{name}.weight_quantized", ints.Select(v => (sbyte)v).ToArray(), shape);
            zero = Onnx.Initializer($"{name}.weight_zero_point", zeroPoints.Select(v => (sbyte)v).ToArray(), channels);
        }
        else
        {
            stored = Onnx.Initializer($"{name}.weight_quantized", ints.Select(v => (byte)v).ToArray(), shape);
            zero = Onnx.Initializer($"{name}.weight_zero_point", zeroPoints.Select(v => (byte)v).ToArray(), channels);
        }
        var scale = Onnx.Initializer($"{name}.weight_scale", scales, channels);
        return Onnx.Node("DequantizeLinear", $"{name}.weight", new[] { stored, scale, zero }, new Dictionary<string, object> { ["axis"] = axis });
    }

    /// <summary>An int32 bias with scale s_in·s_w[c] and zero-point 0 (what ORT's integer kernels take) and its
    /// DequantizeLinear.</summary>
    public string Int32Bias(string name, float[] bias, float inputScale, float[] weightScales)
    {
        var scales = bias.Select((_, c) => inputScale * weightScales[weightScales.Length == 1 ? 0 : c]).ToArray();
        var ints = bias.Select((b, c) => (int)Math.Clamp(Math.Round(b / (double)scales[c], MidpointRounding.ToEven), int.MinValue, int.MaxValue)).ToArray();
        var stored = Onnx.Initializer($"{name}.bias_quantized", ints, ints.Length);
        var scale = Onnx.Initializer($"{name}.bias_scale", scales, scales.Length);
        var zero = Onnx.Initializer($"{name}.bias_zero_point", new int[scales.Length], scales.Length);
        return Onnx.Node("DequantizeLinear", $"{name}.bias", new[] { stored, scale, zero }, new Dictionary<string, object> { ["axis"] = 0L });
    }

    /// <summary>Clip(<paramref name="input"/>, min, max).</summary>
    public string Clip(string name, string input, float min, float max)
    {
        var low = Onnx.Initializer($"{name}.min", new[] { min });
        var high = Onnx.Initializer($"{name}.max", new[] { max });
        return Onnx.Node("Clip", name, new[] { input, low, high });
    }
}
