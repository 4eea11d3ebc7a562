using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace MLNetQuant.Graph;

/// <summary>The integer-kernel census: lets ONNX Runtime's CPU provider apply its graph optimisations (the QDQ
/// fusions into QLinearConv, QGemm, QLinearMatMul …) to a quantized model and lists the quantized weighted nodes that
/// still run as float kernels. ORT keeps a node's name, or names a fused node "name/FusionName/", so they are found by
/// name (tests count the integer kernels independently).</summary>
internal static class KernelCensus
{
    private static readonly HashSet<string> FloatKernels = new(StringComparer.Ordinal)
    {
        "Conv", "ConvTranspose", "Gemm", "MatMul", "FusedConv", "FusedGemm", "FusedMatMul",
    };

    /// <summary>The nodes of <paramref name="quantized"/> (name, op type, whether a QuantizeLinear follows its output)
    /// that run as float kernels in <paramref name="model"/> once ORT has optimised it.</summary>
    public static List<FloatKernel> Run(byte[] model, IEnumerable<(string Node, string OpType, bool OutputRequantized)> quantized)
    {
        var path = Path.Combine(Path.GetTempPath(), $"mlnetquant-census-{Guid.NewGuid():N}.onnx");
        try
        {
            using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_EXTENDED, OptimizedModelFilePath = path })
            using (new InferenceSession(model, options)) { }
            var remaining = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph.Node
                .Where(n => FloatKernels.Contains(n.OpType)).Select(n => n.Name).ToList();
            return quantized.Where(q => remaining.Any(r => r == q.Node || r.StartsWith(q.Node + "/", StringComparison.Ordinal)))
                .Select(q => new FloatKernel(q.Node, q.OpType, Reason(q.OpType, q.OutputRequantized))).ToList();
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static string Reason(string opType, bool outputRequantized) => opType switch
    {
        "ConvTranspose" => "ONNX Runtime's CPU provider has no integer ConvTranspose kernel: it dequantizes the int8 weight and runs the " +
            "float kernel (the model still stores the weight in 8 bits; other execution providers may fuse it)",
        "Conv" when !outputRequantized => "no QuantizeLinear follows its output (it is a model output or feeds float-only ops), and ONNX " +
            "Runtime has no integer Conv with a float output",
        _ => "ONNX Runtime did not fuse its Q/DQ pattern on this graph",
    };
}
