import EddyCore

/// Crash recovery, run when a partition is opened.
///
/// 1. Leftovers of an interrupted compaction are resolved: `.cleaned` files (not yet
///    committed) are removed, `.swap` files (committed) replace their segment.
/// 2. `partition.checkpoint` gives the recovery point: segments wholly before it were fsynced
///    and validated, so only their index files are loaded and validated (checksum, monotonic,
///    inside the file). If any is missing or damaged, or the checkpoint itself is, recovery
///    starts over from offset 0: every batch of every segment is re-validated and all indexes
///    and the producer state are rebuilt.
/// 3. Every batch after the recovery point is re-validated (header sanity, dense base offsets,
///    CRC). In a sealed segment a bad batch is an `EddyError.corrupt` naming the file and byte;
///    in the active segment it is a torn tail: the file is cut there (with anything after it).
/// 4. The active segment is fsynced and a new checkpoint written.
extension PartitionLog {
    func recover() throws {
        let fileSystem = environment.fileSystem
        if !fileSystem.exists(directory) {
            // A new partition: its directory entry must be durable before anything in it is.
            try fileSystem.createDirectory(directory)
            let parent = directoryName(of: directory)
            if fileSystem.exists(parent) { try fileSystem.syncDirectory(parent) }
        }
        var names = try fileSystem.contentsOfDirectory(directory)
        try finishInterruptedCompaction(names: names)
        names = try fileSystem.contentsOfDirectory(directory)

        var bases: [Offset] = []
        for name in names where name.hasSuffix(".log") {
            let stem = name.dropLast(4)
            if stem.count == 20, let base = Offset(stem), base >= 0 { bases.append(base) }
        }
        bases.sort()
        let known = Set(bases.map { Segment.fileName($0, "") })
        for name in names {
            // Index files whose segment was deleted (by retention, before a crash) and temporary files.
            let stem = String(name.prefix(20))
            let isIndex = name.hasSuffix(".index") || name.hasSuffix(".timeindex") || name.hasSuffix(".txnindex")
            if (isIndex && !known.contains(stem)) || name.hasSuffix(".tmp") {
                try fileSystem.removeFile(directory + "/" + name)
            }
        }
        let now = environment.clock.nowMilliseconds
        if bases.isEmpty {
            segments = [try Segment(baseOffset: 0, directory: directory, fileSystem: fileSystem, create: true, now: now)]
            nextOffset = 0
            openTransactions = [:]
            try fileSystem.syncDirectory(directory)
            try writeCheckpoint()
            return
        }

        let checkpointPath = directory + "/" + MetadataFile.checkpointName
        var checkpoint: PartitionCheckpoint?
        if fileSystem.exists(checkpointPath) {
            let file = try fileSystem.open(checkpointPath, create: false)
            defer { try? file.close() }
            checkpoint = try? PartitionCheckpoint.decode(try file.readAll(), path: checkpointPath)
        }
        do {
            do {
                try recoverSegments(bases: bases, checkpoint: checkpoint, now: now)
            } catch is UntrustedIndex {
                for segment in segments { try? segment.close() }
                try recoverSegments(bases: bases, checkpoint: nil, now: now)
            }
            // Validated bytes may still be only in the page cache (a process crash with
            // fsync=os): make them durable before the checkpoint vouches for them.
            let active = activeSegment
            active.hasUnsyncedData = true
            try active.sync()
            // The checkpoint vouches for the active segment's index files up to the recovery
            // point (a later recovery loads them instead of rescanning): write them first.
            active.indexesDirty = true
            try active.writeIndexes()
            try writeCheckpoint()
        } catch {
            for segment in segments { try? segment.close() }
            segments = []
            throw error
        }
    }

    /// A trusted segment's index files are missing or damaged: recovery starts over from 0.
    struct UntrustedIndex: Error {}

    private func recoverSegments(bases: [Offset], checkpoint: PartitionCheckpoint?, now: Int64) throws {
        let fileSystem = environment.fileSystem
        let interval = currentConfiguration.indexIntervalBytes
        let recoveryPoint = checkpoint?.recoveryPoint ?? 0
        openTransactions = checkpoint?.openTransactions ?? [:]
        segments = []
        for base in bases {
            segments.append(try Segment(baseOffset: base, directory: directory, fileSystem: fileSystem, create: false, now: now))
        }
        for (index, segment) in segments.enumerated() {
            let isLast = index == segments.count - 1
            if !isLast {
                let next = bases[index + 1]
                if checkpoint != nil && next <= recoveryPoint {
                    segment.nextOffset = next
                    do { try segment.loadIndexes() } catch { throw UntrustedIndex() }
                    continue
                }
                // Sealed but after the recovery point: validate all of it; damage is an error.
                try scanRebuilding(segment, from: 0, expectedOffset: segment.baseOffset, recoveryPoint: recoveryPoint,
                                   interval: interval, truncate: false)
                if segment.nextOffset != next {
                    throw EddyError(.corrupt, "\(segment.logPath) ends at offset \(segment.nextOffset) but the next segment starts at \(next)")
                }
                try segment.writeIndexes()
                continue
            }
            // The active segment: trust its prefix up to the recovery point when the checkpoint
            // and the index files agree with the file; otherwise start over from offset 0 (the
            // producer state and aborted transactions before the cut are unknown).
            if let checkpoint, segment.baseOffset < recoveryPoint {
                guard checkpoint.recoveryPosition > 0, segment.size >= checkpoint.recoveryPosition else { throw UntrustedIndex() }
                let fullSize = segment.size
                segment.size = checkpoint.recoveryPosition
                segment.nextOffset = recoveryPoint
                do { try segment.loadIndexes() } catch { throw UntrustedIndex() }
                segment.size = fullSize
                try scanRebuilding(segment, from: checkpoint.recoveryPosition, expectedOffset: recoveryPoint,
                                   recoveryPoint: recoveryPoint, interval: interval, truncate: true)
            } else {
                try scanRebuilding(segment, from: 0, expectedOffset: segment.baseOffset, recoveryPoint: recoveryPoint,
                                   interval: interval, truncate: true)
            }
        }
        nextOffset = activeSegment.nextOffset
        if checkpoint == nil || nextOffset < recoveryPoint {
            // Transactions can only be open from offsets that still exist.
            openTransactions = openTransactions.filter { $0.value < nextOffset }
        }
    }

    /// Validates the batches of `segment` from `position`, rebuilding its indexes and the
    /// producer state (for batches at or after `recoveryPoint`). A bad batch throws, or with
    /// `truncate` cuts the file there.
    private func scanRebuilding(_ segment: Segment, from position: Int64, expectedOffset: Offset,
                                recoveryPoint: Offset, interval: Int, truncate: Bool) throws {
        if position == 0 { segment.resetIndexes() }
        let fileSize = try segment.file.size()
        segment.size = fileSize
        do {
            try segment.scan(from: position, expectedOffset: expectedOffset, end: fileSize,
                             maximumBatchSize: Self.maximumStoredBatchBytes,
                             decide: { _, _ in .visit },
                             visit: { fields, at, batch in
                                 if fields.isControl {
                                     // A control batch must decode: it ends a transaction.
                                     do { _ = try RecordBatch.controlType(of: batch) } catch let error as EddyError {
                                         throw SegmentCorruption(path: segment.logPath, position: at, reason: error.message)
                                     }
                                 }
                                 segment.noteBatch(fields: fields, position: at, indexIntervalBytes: interval)
                                 if fields.baseOffset >= recoveryPoint {
                                     try applyTransaction(fields: fields, batch: batch, segment: segment)
                                 }
                             })
        } catch let corruption as SegmentCorruption {
            guard truncate else { throw corruption.error }
            try cutTornTail(segment, at: corruption.position, reason: corruption.reason)
        }
    }

    private func cutTornTail(_ segment: Segment, at position: Int64, reason: String) throws {
        let size = try segment.file.size()
        try segment.truncate(toPosition: position, offset: segment.nextOffset)
        recoveredTornTail = "\(segment.logPath): cut \(size - position) bytes at byte \(position): \(reason)"
    }

    /// Resolves `.cleaned` (uncommitted, removed) and `.swap` (committed, renamed into place)
    /// files left by a compaction that was interrupted.
    private func finishInterruptedCompaction(names: [String]) throws {
        let fileSystem = environment.fileSystem
        var changed = false
        for name in names where name.hasSuffix(".cleaned") {
            try fileSystem.removeFile(directory + "/" + name)
            changed = true
        }
        for name in names where name.hasSuffix(".log.swap") {
            let stem = String(name.dropLast(".log.swap".count))
            for suffix in [".index", ".timeindex"] { try fileSystem.removeFile(directory + "/" + stem + suffix) }
            try fileSystem.rename(directory + "/" + name, to: directory + "/" + stem + ".log")
            changed = true
        }
        if changed { try fileSystem.syncDirectory(directory) }
    }
}
