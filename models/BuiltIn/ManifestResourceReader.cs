using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace NativeSparsity.Models.BuiltIn;

/// <summary>
/// Reads an embedded (manifest) resource straight out of a .NET assembly file with
/// System.Reflection.Metadata: the assembly is never loaded, so none of its code runs. Layout
/// (ECMA-335 II.24.2.4): the CLI header's Resources directory holds each resource at its
/// ManifestResource offset as a 4-byte little-endian length followed by the bytes.
/// </summary>
public static class ManifestResourceReader
{
    public static IReadOnlyList<string> Names(string assemblyPath)
    {
        using var pe = Open(assemblyPath);
        var md = pe.GetMetadataReader();
        return md.ManifestResources.Select(h => md.GetString(md.GetManifestResource(h).Name)).ToList();
    }

    public static byte[] Read(string assemblyPath, string resourceName)
    {
        using var pe = Open(assemblyPath);
        {
            var md = pe.GetMetadataReader();
            foreach (var handle in md.ManifestResources)
            {
                var resource = md.GetManifestResource(handle);
                if (md.GetString(resource.Name) != resourceName) continue;
                if (!resource.Implementation.IsNil)
                    throw new InvalidDataException($"{assemblyPath}: resource '{resourceName}' lives in another file, not in this assembly");
                var dir = pe.PEHeaders.CorHeader!.ResourcesDirectory;
                var section = pe.GetSectionData(dir.RelativeVirtualAddress);
                long start = resource.Offset;
                if (dir.Size < 4 || start < 0 || start + 4 > dir.Size || section.Length < dir.Size)
                    throw new InvalidDataException($"{assemblyPath}: resource '{resourceName}' lies outside the resources directory");
                var reader = section.GetReader((int)start, dir.Size - (int)start);
                int length = reader.ReadInt32();
                if (length < 0 || start + 4 + length > dir.Size)
                    throw new InvalidDataException($"{assemblyPath}: resource '{resourceName}' claims {length} bytes, more than the resources directory holds");
                return reader.ReadBytes(length);
            }
            throw new InvalidDataException($"{assemblyPath}: no embedded resource '{resourceName}' (it has: {string.Join(", ", Names(assemblyPath))})");
        }
    }

    // The reader owns the stream and reads the whole image up front.
    private static PEReader Open(string assemblyPath)
    {
        if (!File.Exists(assemblyPath)) throw new FileNotFoundException($"{assemblyPath}: no such assembly", assemblyPath);
        var stream = File.OpenRead(assemblyPath);
        try
        {
            var pe = new PEReader(stream, PEStreamOptions.PrefetchEntireImage);
            if (!pe.HasMetadata || pe.PEHeaders.CorHeader == null)
                throw new InvalidDataException($"{assemblyPath}: not a .NET assembly");
            return pe;
        }
        catch (BadImageFormatException e)
        {
            stream.Dispose();
            throw new InvalidDataException($"{assemblyPath}: not a readable .NET assembly ({e.Message})", e);
        }
    }
}
