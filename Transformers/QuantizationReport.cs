using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML;
using Onnx;

namespace MLNetQuant;

/// <summary>How one tensor of one layer was quantized.</summary>
/// <param name="Layer">Dotted module name.</param>
/// <param name="OpType">The module's op type (Conv2d, Linear …).</param>
/// <param name="Tensor">Weight, input or output.</param>
/// <param name="Bits">Configured bit width.</param>
/// <param name="Scheme">Per-tensor or per-channel, affine or symmetric.</param>
/// <param name="Dtype">Signed or unsigned grid.</param>
/// <param name="Scales">One scale (per tensor) or one per channel; empty for block-wise weights (<see cref="BlockSize"/>).</param>
/// <param name="ZeroPoints">Zero-points, as many as scales.</param>
public sealed record QuantizedTensorReport(string Layer, string OpType, QuantType Tensor, int Bits, QuantScheme Scheme,
    QuantDtype Dtype, float[] Scales, long[] ZeroPoints)
{
    /// <summary>For block-wise weights (weight-only int4): the number of consecutive values along the reduction axis
    /// that share one scale and zero-point; 0 otherwise. Block scales stay in the model's initializers only — a small
    /// transformer has hundreds of thousands, which would outweigh its int4 weights in the report.</summary>
    public int BlockSize { get; init; }
}

/// <summary>How far one quantized node's output moved from the float model's, on a few calibration rows.</summary>
/// <param name="Node">The ONNX node (or layer) name.</param>
/// <param name="OpType">Its op type.</param>
/// <param name="SqnrDb">Signal-to-quantization-noise ratio in dB, 10·log10(Σx² / Σ(x − x̂)²): lower is worse.</param>
public sealed record LayerError(string Node, string OpType, double SqnrDb);

/// <summary>A node MLNetQuant quantized that ONNX Runtime's CPU provider still runs with a float kernel after its graph
/// optimisations (the integer-kernel census), and why.</summary>
/// <param name="Node">The ONNX node name.</param>
/// <param name="OpType">Its op type.</param>
/// <param name="Reason">Why no integer kernel runs it.</param>
public sealed record FloatKernel(string Node, string OpType, string Reason);

/// <summary>The per-layer quantization report MLNetQuant writes into the ONNX model's metadata_props (key
/// <see cref="MetadataKey"/>, JSON), so it survives saving in the ML.NET .zip and loading in production.</summary>
/// <param name="FormatVersion">Version of this JSON layout.</param>
/// <param name="Algorithm">The algorithm that produced the model.</param>
/// <param name="Tensors">Every quantized tensor, in graph order.</param>
public sealed record QuantizationReport(int FormatVersion, string Algorithm, IReadOnlyList<QuantizedTensorReport> Tensors)
{
    /// <summary>Post-training quantization of ONNX models: each quantized node's output error against the float model,
    /// worst first (exclude the worst nodes if accuracy drops). Null when not measured.</summary>
    public IReadOnlyList<LayerError>? LayerErrors { get; init; }

    /// <summary>Post-training quantization of ONNX models: the quantized Conv/ConvTranspose/Gemm/MatMul nodes that
    /// ONNX Runtime's CPU provider does not run as integer kernels, with the reason (empty when all of them do; null
    /// when not measured, e.g. weight-only models, which run float kernels on dequantized weights by design).</summary>
    public IReadOnlyList<FloatKernel>? FloatKernels { get; init; }

    /// <summary>Post-training quantization with an accuracy tolerance: the search's trail (baseline, sensitivities,
    /// trials, the layers kept float). Null when no search ran.</summary>
    public ToleranceSearchReport? ToleranceSearch { get; init; }

    /// <summary>Post-training quantization with a weight size budget: the per-layer 4/8-bit choice. Null when no
    /// budget was set.</summary>
    public MixedPrecisionReport? MixedPrecision { get; init; }

    /// <summary>The metadata_props key holding the report.</summary>
    public const string MetadataKey = "mlnetquant.report";

    /// <summary>The layout version this library writes.</summary>
    public const int CurrentFormatVersion = 1;

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = false,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>The report as JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads a report from ONNX model bytes.</summary>
    /// <exception cref="InvalidDataException">The bytes are not an ONNX model, or it carries no MLNetQuant report.</exception>
    public static QuantizationReport FromOnnx(byte[] onnxModel)
    {
        ArgumentNullException.ThrowIfNull(onnxModel);
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(onnxModel);
        }
        catch (Google.Protobuf.InvalidProtocolBufferException e)
        {
            throw new InvalidDataException("The bytes are not an ONNX model.", e);
        }
        var entry = model.MetadataProps.FirstOrDefault(p => p.Key == MetadataKey) ?? throw new InvalidDataException(
            $"The ONNX model has no '{MetadataKey}' metadata: it was not written by MLNetQuant.");
        return JsonSerializer.Deserialize<QuantizationReport>(entry.Value, Json)
            ?? throw new InvalidDataException($"The '{MetadataKey}' metadata is empty.");
    }

    /// <summary>Reads the report from an ML.NET model .zip saved by <c>mlContext.Model.Save</c>.</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="zipPath"/>.</exception>
    /// <exception cref="InvalidDataException">The zip holds no MLNetQuant ONNX model.</exception>
    public static QuantizationReport FromZip(string zipPath)
    {
        if (!File.Exists(zipPath)) throw new FileNotFoundException($"No model file at '{zipPath}'.", zipPath);
        using var stream = File.OpenRead(zipPath);
        return FromZip(stream, zipPath);
    }

    /// <summary>Reads the report from a stream holding an ML.NET model .zip.</summary>
    /// <exception cref="InvalidDataException">The stream holds no MLNetQuant ONNX model.</exception>
    public static QuantizationReport FromZip(Stream zip) => FromZip(zip, "the stream");

    /// <summary>Reads the report from a loaded model: a QuantizedModelTransformer, or whatever
    /// <c>mlContext.Model.Load</c> returned for a saved one (an OnnxTransformer, possibly inside a chain).</summary>
    /// <exception cref="InvalidDataException">The transformer holds no MLNetQuant ONNX model.</exception>
    public static QuantizationReport FromTransformer(MLContext ml, ITransformer transformer)
    {
        ArgumentNullException.ThrowIfNull(ml);
        ArgumentNullException.ThrowIfNull(transformer);
        if (transformer is QuantizedModelTransformer quantized) return quantized.Report;
        using var buffer = new MemoryStream();
        ml.Model.Save(transformer, null, buffer);
        buffer.Position = 0;
        return FromZip(buffer, "the transformer");
    }

    private static QuantizationReport FromZip(Stream zip, string what)
    {
        using var archive = new ZipArchive(zip, ZipArchiveMode.Read, leaveOpen: true);
        foreach (var entry in archive.Entries.Where(e => e.Name.Contains("OnnxModel", StringComparison.Ordinal)))
        {
            using var entryStream = entry.Open();
            using var copy = new MemoryStream();
            entryStream.CopyTo(copy);
            var bytes = copy.ToArray();
            // ML.NET writes the ONNX bytes behind a length prefix; try the known prefixes.
            foreach (var offset in new[] { 8, 4, 0 })
            {
                if (bytes.Length <= offset) continue;
                try
                {
                    return FromOnnx(bytes[offset..]);
                }
                catch (InvalidDataException)
                {
                }
            }
        }
        throw new InvalidDataException($"{what} holds no ONNX model with an MLNetQuant report.");
    }
}
